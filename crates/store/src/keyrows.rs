//! [`KeyRows`]: the sort and thread keys of many messages (`MailStore::sort_keys`) in one
//! buffer. A first SORT of 100,000 messages read them as one `Vec<u8>` each: 100,000
//! allocations, and fresh pages faulted in for each, were a third of the read.

/// `(uid, keys)` rows, UIDs ascending, the keys laid end to end in one buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyRows {
    uids: Vec<u32>,
    /// Where each row's keys end in `data` (a row starts where the one before ends).
    ends: Vec<usize>,
    data: Vec<u8>,
}

/// Most bytes reserved ahead for a read (pages are only touched as rows fill them).
const MAX_RESERVE: usize = 64 << 20;

impl KeyRows {
    /// Room for `rows` rows of about `row_bytes` each.
    pub fn with_capacity(rows: usize, row_bytes: usize) -> KeyRows {
        KeyRows {
            uids: Vec::with_capacity(rows),
            ends: Vec::with_capacity(rows),
            data: Vec::with_capacity(rows.saturating_mul(row_bytes).min(MAX_RESERVE)),
        }
    }

    /// Adds a row; `uid` must be above the last one's.
    pub fn push(&mut self, uid: u32, keys: &[u8]) {
        debug_assert!(self.uids.last().is_none_or(|&u| u < uid));
        self.uids.push(uid);
        self.data.extend_from_slice(keys);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.uids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    pub fn uids(&self) -> &[u32] {
        &self.uids
    }

    /// Row `i`'s keys.
    pub fn keys(&self, i: usize) -> &[u8] {
        &self.data[self.span(i).0..self.span(i).1]
    }

    /// Row `i`'s place in [`KeyRows::into_data`]'s buffer: start and end.
    pub fn span(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (start, self.ends[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8])> {
        (0..self.len()).map(|i| (self.uids[i], self.keys(i)))
    }

    /// The rows as separate vectors (tests and small reads).
    pub fn to_vec(&self) -> Vec<(u32, Vec<u8>)> {
        self.iter().map(|(u, k)| (u, k.to_vec())).collect()
    }

    /// The buffer every row's keys lie in (see [`KeyRows::span`]).
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_push_append_and_read_back() {
        let mut a = KeyRows::with_capacity(2, 4);
        a.push(1, b"one");
        a.push(3, b"");
        a.push(7, b"seven");
        assert_eq!(
            a.to_vec(),
            vec![
                (1, b"one".to_vec()),
                (3, Vec::new()),
                (7, b"seven".to_vec())
            ]
        );
        assert_eq!(a.uids(), [1, 3, 7]);
        assert_eq!((a.len(), a.span(2)), (3, (3, 8)));
        assert_eq!(&a.clone().into_data()[3..8], b"seven");
    }
}
