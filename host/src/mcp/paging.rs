//! Pages of list results: `tools/list`, `resources/list`,
//! `resources/templates/list` and `prompts/list` answer at most
//! [`PAGE_SIZE`] items, with a cursor to the next page. A cursor is the
//! offset and the registry version it was made at, so a cursor from before
//! a plugin was installed or removed is refused rather than skipping or
//! repeating items. On 2026-07-28 the lists carry cache hints: they change
//! only when plugins do (and then `list_changed` says so).

use rmcp::ErrorData;

/// Most items in one page.
pub const PAGE_SIZE: usize = 100;

/// How long a client may cache a list (2026-07-28 `ttlMs`).
pub const LIST_TTL_MS: u64 = 60_000;

/// Which page of `items` (listed at registry `version`) `cursor` asks for,
/// and the cursor of the next page, if there is one.
pub fn page<T>(
    mut items: Vec<T>,
    cursor: Option<&str>,
    version: u64,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(cursor) => parse(cursor, version)?,
    };
    if start > items.len() {
        return Err(bad_cursor());
    }
    let rest = items.split_off(start);
    let mut page = rest;
    let next = (page.len() > PAGE_SIZE).then(|| format!("{version}.{}", start + PAGE_SIZE));
    page.truncate(PAGE_SIZE);
    Ok((page, next))
}

fn bad_cursor() -> ErrorData {
    ErrorData::invalid_params(
        "invalid or stale cursor: list again from the start (the plugins changed, or the \
         cursor is not one this host gave)",
        None,
    )
}

fn parse(cursor: &str, version: u64) -> Result<usize, ErrorData> {
    let (at, offset) = cursor.split_once('.').ok_or_else(bad_cursor)?;
    if at.parse::<u64>().ok() != Some(version) {
        return Err(bad_cursor());
    }
    offset.parse().map_err(|_| bad_cursor())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_cursors_and_stale_cursors_are_refused() {
        let items: Vec<u32> = (0..250).collect();
        let (first, next) = page(items.clone(), None, 7).unwrap();
        assert_eq!(first.len(), PAGE_SIZE);
        let next = next.unwrap();
        let (second, next) = page(items.clone(), Some(&next), 7).unwrap();
        assert_eq!(second[0], 100);
        let (third, last) = page(items.clone(), next.as_deref(), 7).unwrap();
        assert_eq!(third.len(), 50);
        assert!(last.is_none());
        assert!(page(items.clone(), Some("6.100"), 7).is_err(), "stale");
        assert!(page(items.clone(), Some("garbage"), 7).is_err());
        assert!(page(items, Some("7.999"), 7).is_err());
        let (small, none) = page(vec![1, 2], None, 0).unwrap();
        assert_eq!((small.len(), none), (2, None));
    }
}
