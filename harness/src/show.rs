//! How operations read in a failure message: addresses and sizes in hex with a `_` every
//! four digits, flags by name. Generated operations derive nothing but these, so that a
//! shrunk case prints as `Map { va: 0x40_0000_0000, len: 0x1000, flags: READABLE | WRITABLE }`.

use core::fmt;

use paging::PageFlags;

/// A number shown in hex, grouped by four digits: `0xffff_8000_0000_0000`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex(pub u64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = format!("{:x}", self.0);
        let mut grouped = String::with_capacity(digits.len() * 5 / 4 + 2);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 4 == 0 {
                grouped.push('_');
            }
            grouped.push(digit);
        }
        write!(f, "0x{grouped}")
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Page flags by name, `READABLE | WRITABLE`; bits without a name (a protection key) in
/// hex after them, and `empty` for none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub PageFlags);

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.0.iter_names().map(|(name, _)| name.into()).collect();
        let unnamed = self.0.bits() & !PageFlags::all().bits();
        if unnamed != 0 {
            parts.push(format!("{unnamed:#x}"));
        }
        if parts.is_empty() { f.write_str("empty") } else { f.write_str(&parts.join(" | ")) }
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A list shown one item a line, each after its index, the item at `mark` marked `>`:
/// the steps of a run up to the one that failed.
pub struct Numbered<'a, T>(pub &'a [T], pub Option<usize>);

impl<T: fmt::Debug> fmt::Display for Numbered<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            let marker = if Some(i) == self.1 { '>' } else { ' ' };
            writeln!(f, "{marker}{i:4}: {item:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_groups_by_four_digits() {
        let shown: Vec<String> =
            [0, 0xfff, 0x1000, 0x40_0000_0000, u64::MAX].map(|v| Hex(v).to_string()).into();
        assert_eq!(shown, ["0x0", "0xfff", "0x1000", "0x40_0000_0000", "0xffff_ffff_ffff_ffff"]);
    }

    #[test]
    fn flags_by_name() {
        let rw = PageFlags::READABLE | PageFlags::WRITABLE;
        assert_eq!(Flags(rw).to_string(), "READABLE | WRITABLE");
        assert_eq!(Flags(PageFlags::empty()).to_string(), "empty");
    }
}
