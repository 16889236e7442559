//! Plots of faults against frames.
