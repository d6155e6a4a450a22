//! Writing SEARCH results: `* SEARCH` (RFC 3501 §7.2.5, RFC 7162 §3.1.5) and `* ESEARCH`
//! (RFC 4731, RFC 9051 §7.3.4).

use mailkeep_proto::{PartialRange, SearchReturn};

use crate::cmd::number_runs;

/// rev1 `* SEARCH 2 3 5`, with `(MODSEQ n)` when the query had a MODSEQ key and something
/// matched (RFC 7162 §3.1.5).
pub(crate) fn write_search(out: &mut Vec<u8>, nums: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* SEARCH");
    for n in nums {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
    if let (Some(m), false) = (modseq, nums.is_empty()) {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ESEARCH (TAG "t") UID MIN a MAX b ALL set COUNT n [MODSEQ m]`. `nums` is sorted.
/// Data pairs come in Dovecot's order (the RFC allows any); MIN, MAX and ALL are left out when
/// nothing matched, COUNT is not (RFC 4731 §3.1). An empty `ret` means ALL (RFC 4731 §3.1).
pub(crate) fn write_esearch(
    out: &mut Vec<u8>,
    tag: Option<&str>,
    uid: bool,
    ret: &[SearchReturn],
    nums: &[u32],
    modseq: Option<u64>,
) {
    write_esearch_with(out, tag, "", uid, ret, nums, modseq);
}

/// [`write_esearch`] with more correlators after the TAG (` MAILBOX "m" UIDVALIDITY n`, RFC
/// 7377 §4).
pub(crate) fn write_esearch_with(
    out: &mut Vec<u8>,
    tag: Option<&str>,
    correlators: &str,
    uid: bool,
    ret: &[SearchReturn],
    nums: &[u32],
    modseq: Option<u64>,
) {
    let all = ret.is_empty() || ret.contains(&SearchReturn::All);
    out.extend_from_slice(b"* ESEARCH");
    if let Some(tag) = tag {
        out.extend_from_slice(b" (TAG \"");
        for &b in tag.as_bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
        out.extend_from_slice(correlators.as_bytes());
        out.push(b')');
    }
    if uid {
        out.extend_from_slice(b" UID");
    }
    if let (Some(min), Some(max)) = (nums.first(), nums.last()) {
        if ret.contains(&SearchReturn::Min) {
            out.extend_from_slice(format!(" MIN {min}").as_bytes());
        }
        if ret.contains(&SearchReturn::Max) {
            out.extend_from_slice(format!(" MAX {max}").as_bytes());
        }
        if all {
            out.extend_from_slice(format!(" ALL {}", number_runs(nums)).as_bytes());
        }
    }
    if let Some(range) = partial(ret) {
        // RFC 9394 §3.1: the range as requested, then the results in it or NIL.
        let part = &nums[range.slice(nums.len())];
        let set = if part.is_empty() {
            "NIL".to_string()
        } else {
            number_runs(part)
        };
        out.extend_from_slice(format!(" PARTIAL ({} {set})", range.to_wire()).as_bytes());
    }
    if ret.contains(&SearchReturn::Count) {
        out.extend_from_slice(format!(" COUNT {}", nums.len()).as_bytes());
    }
    if let (Some(m), false) = (modseq, nums.is_empty()) {
        out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The PARTIAL return option, if given (RFC 9394; the parser allows at most one).
pub(crate) fn partial(ret: &[SearchReturn]) -> Option<PartialRange> {
    ret.iter().find_map(|r| match r {
        SearchReturn::Partial(p) => Some(*p),
        _ => None,
    })
}

/// RFC 5182 §2.4: with SAVE, MIN and/or MAX but neither ALL nor COUNT, only the minimum and/or
/// maximum are saved; otherwise the whole result. RFC 9394 §3.2 (Table 1): with PARTIAL and no
/// COUNT, the PARTIAL results together with the MIN and/or MAX message.
pub(crate) fn saved_subset(ret: &[SearchReturn], uids: &[u32]) -> Vec<u32> {
    let min = ret.contains(&SearchReturn::Min);
    let max = ret.contains(&SearchReturn::Max);
    let part = partial(ret);
    let whole = ret.contains(&SearchReturn::All) || ret.contains(&SearchReturn::Count);
    if whole || !(min || max || part.is_some()) {
        return uids.to_vec();
    }
    let mut v = Vec::new();
    if let Some(p) = part {
        v.extend_from_slice(&uids[p.slice(uids.len())]);
    }
    if let (true, Some(&m)) = (min, uids.first()) {
        v.push(m);
    }
    if let (true, Some(&m)) = (max, uids.last()) {
        v.push(m);
    }
    if part.is_some() {
        // The view order for `$` (SORT passes UIDs in sort order).
        v.sort_unstable();
    }
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use SearchReturn::*;

    fn es(
        tag: Option<&str>,
        uid: bool,
        ret: &[SearchReturn],
        nums: &[u32],
        modseq: Option<u64>,
    ) -> String {
        let mut out = Vec::new();
        write_esearch(&mut out, tag, uid, ret, nums, modseq);
        String::from_utf8(out).unwrap()
    }

    type Case = (
        Option<&'static str>,
        bool,
        &'static [SearchReturn],
        &'static [u32],
        Option<u64>,
        &'static str,
    );

    #[test]
    fn esearch_formats() {
        let cases: &[Case] = &[
            (
                Some("A1"),
                true,
                &[Min, Max, Count, All],
                &[1, 2, 3, 9],
                None,
                "* ESEARCH (TAG \"A1\") UID MIN 1 MAX 9 ALL 1:3,9 COUNT 4\r\n",
            ),
            (
                Some("A1"),
                true,
                &[Min, Max, Count, All],
                &[],
                None,
                "* ESEARCH (TAG \"A1\") UID COUNT 0\r\n",
            ),
            (
                Some("j"),
                false,
                &[],
                &[],
                None,
                "* ESEARCH (TAG \"j\")\r\n",
            ),
            (
                Some("j"),
                false,
                &[],
                &[4, 5, 6],
                None,
                "* ESEARCH (TAG \"j\") ALL 4:6\r\n",
            ),
            (
                Some("k2"),
                true,
                &[Min],
                &[],
                None,
                "* ESEARCH (TAG \"k2\") UID\r\n",
            ),
            (
                Some("l"),
                false,
                &[Save, Min],
                &[3, 8],
                None,
                "* ESEARCH (TAG \"l\") MIN 3\r\n",
            ),
            (
                None,
                false,
                &[Count],
                &[1, 2],
                Some(17),
                "* ESEARCH COUNT 2 MODSEQ 17\r\n",
            ),
            (
                Some("a\"b"),
                false,
                &[Max],
                &[7],
                None,
                "* ESEARCH (TAG \"a\\\"b\") MAX 7\r\n",
            ),
        ];
        for (tag, uid, ret, nums, modseq, want) in cases {
            assert_eq!(es(*tag, *uid, ret, nums, *modseq), *want);
        }
    }

    #[test]
    fn search_formats() {
        let mut out = Vec::new();
        write_search(&mut out, &[], Some(5));
        write_search(&mut out, &[1, 4], Some(5));
        write_search(&mut out, &[2], None);
        assert_eq!(
            out,
            b"* SEARCH\r\n* SEARCH 1 4 (MODSEQ 5)\r\n* SEARCH 2\r\n".to_vec()
        );
    }

    #[test]
    fn save_subsets() {
        let u = [2, 5, 9];
        assert_eq!(saved_subset(&[Save], &u), vec![2, 5, 9]);
        assert_eq!(saved_subset(&[Save, Min], &u), vec![2]);
        assert_eq!(saved_subset(&[Save, Min, Max], &u), vec![2, 9]);
        assert_eq!(saved_subset(&[Save, Max, Count], &u), vec![2, 5, 9]);
        assert_eq!(saved_subset(&[Save, Min, Max], &[4]), vec![4]);
        assert_eq!(saved_subset(&[Save, Min], &[]), Vec::<u32>::new());
        // RFC 9394 Table 1.
        let p = |first, second| {
            Partial(PartialRange {
                from_end: false,
                first,
                second,
            })
        };
        let u = [2, 5, 9, 11, 14];
        assert_eq!(saved_subset(&[Save, p(2, 3)], &u), vec![5, 9]);
        assert_eq!(saved_subset(&[Save, p(2, 3), Min], &u), vec![2, 5, 9]);
        assert_eq!(saved_subset(&[Save, p(2, 3), Max], &u), vec![5, 9, 14]);
        assert_eq!(
            saved_subset(&[Save, p(2, 3), Min, Max], &u),
            vec![2, 5, 9, 14]
        );
        assert_eq!(saved_subset(&[Save, p(2, 3), Count, Min], &u), u.to_vec());
        assert_eq!(saved_subset(&[Save, p(9, 10)], &u), Vec::<u32>::new());
    }

    #[test]
    fn esearch_partial() {
        let last = |first, second| {
            Partial(PartialRange {
                from_end: true,
                first,
                second,
            })
        };
        let nums: Vec<u32> = (1..=10).map(|n| n * 2).collect();
        assert_eq!(
            es(Some("A01"), true, &[last(1, 3)], &nums, None),
            "* ESEARCH (TAG \"A01\") UID PARTIAL (-1:-3 16,18,20)\r\n"
        );
        let first = Partial(PartialRange {
            from_end: false,
            first: 24000,
            second: 24500,
        });
        assert_eq!(
            es(Some("A04"), true, &[first, Count], &nums, None),
            "* ESEARCH (TAG \"A04\") UID PARTIAL (24000:24500 NIL) COUNT 10\r\n"
        );
        assert_eq!(
            es(Some("A05"), true, &[first], &[], None),
            "* ESEARCH (TAG \"A05\") UID PARTIAL (24000:24500 NIL)\r\n"
        );
    }
}
