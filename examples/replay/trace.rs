//! Reading traces: valgrind lackey and plain address lists, plain, xz or gzip.
