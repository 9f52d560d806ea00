//! Cutting text to a size without splitting a character: what the host does
//! to everything a plugin says that it keeps or shows (log records, progress
//! messages, a crashed guest's stderr).

use std::borrow::Cow;

/// `text` cut to at most `max` bytes on a character boundary, with a marker
/// saying how much was cut.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let end = floor_char_boundary(text, max);
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

/// The last `max` bytes of `text` (or fewer), starting on a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The largest character boundary at or below `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut end = index.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééé", 3);
        assert!(cut.starts_with("é…"), "{cut}");
        assert!(cut.ends_with("(4 bytes cut)"), "{cut}");
    }

    #[test]
    fn tails_start_on_a_char_boundary() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("aéé", 3), "é");
        assert_eq!(tail("abcdef", 2), "ef");
    }
}
