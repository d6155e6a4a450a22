//! Quotas (RFC 9208): per-account limits on storage (the sum of RFC822.SIZE of the account's
//! messages, as Dovecot counts) and on the number of messages.
//!
//! An account's own setting for a resource is [`QuotaSetting::Default`] (use the `[quota]`
//! default of the configuration), [`QuotaSetting::Unlimited`] or a limit. The sizes of the
//! configuration and of `mailkeep quota set` are read by [`parse_size`].

/// Effective limits: `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes.
    pub storage: Option<u64>,
    pub messages: Option<u64>,
}

impl QuotaLimits {
    /// Limits from numbers where 0 means no limit (the configuration's form).
    pub fn from_zero_unlimited(storage: u64, messages: u64) -> QuotaLimits {
        let some = |v: u64| (v > 0).then_some(v);
        QuotaLimits {
            storage: some(storage),
            messages: some(messages),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.storage.is_none() && self.messages.is_none()
    }
}

/// An account's own setting for one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuotaSetting {
    /// The configured default applies.
    #[default]
    Default,
    /// No limit, whatever the default.
    Unlimited,
    /// This many (bytes for storage); never 0 (see [`QuotaSetting::limit`]).
    Limit(u64),
}

impl QuotaSetting {
    /// `Limit(n)`, or `Default` for 0.
    pub fn limit(n: u64) -> QuotaSetting {
        if n == 0 {
            QuotaSetting::Default
        } else {
            QuotaSetting::Limit(n)
        }
    }

    /// The limit in effect given the default.
    pub fn effective(self, default: Option<u64>) -> Option<u64> {
        match self {
            QuotaSetting::Default => default,
            QuotaSetting::Unlimited => None,
            QuotaSetting::Limit(n) => Some(n),
        }
    }

    /// As stored: NULL default, 0 unlimited, n a limit.
    pub fn to_sql(self) -> Option<i64> {
        match self {
            QuotaSetting::Default => None,
            QuotaSetting::Unlimited => Some(0),
            QuotaSetting::Limit(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    pub fn from_sql(v: Option<i64>) -> QuotaSetting {
        match v {
            None => QuotaSetting::Default,
            Some(n) if n <= 0 => QuotaSetting::Unlimited,
            Some(n) => QuotaSetting::Limit(n as u64),
        }
    }
}

/// An account's usage and limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Bytes: the sum of RFC822.SIZE of the account's messages.
    pub storage_used: u64,
    pub messages_used: u64,
    /// The account's own settings.
    pub storage_setting: QuotaSetting,
    pub messages_setting: QuotaSetting,
    /// What is enforced (own setting, else the default).
    pub limits: QuotaLimits,
}

/// Parses a size: plain bytes (`1048576`) or a number with a binary unit `K`, `M`, `G`, `T`
/// (1024-based, case-insensitive, optional trailing `B`/`iB`: `10K`, `500M`, `2G`, `2GiB`).
/// `0` is 0. Used by the configuration (`[quota] storage`) and by `mailkeep quota set`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "{text:?} is not a size (e.g. 2G, 500M, 10K, 1048576)"
        ));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("{text:?} is too big"))?;
    let unit = t[digits..].trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too big"))
}

/// Bytes in the largest unit that divides them (`2G`, `1536K`, `1000`), as [`parse_size`] reads.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("10K"), Ok(10 << 10));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size(" 3 MB "), Ok(3 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        for bad in [
            "",
            "G",
            "-1",
            "2X",
            "1.5G",
            "99999999999999999999",
            "20000000000T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        for n in [0, 1000, 1 << 10, 1536 << 10, 2 << 30, 3 << 40] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(format_size(2 << 30), "2G");
    }

    #[test]
    fn settings() {
        assert_eq!(QuotaSetting::limit(0), QuotaSetting::Default);
        assert_eq!(QuotaSetting::Default.effective(Some(5)), Some(5));
        assert_eq!(QuotaSetting::Unlimited.effective(Some(5)), None);
        assert_eq!(QuotaSetting::Limit(7).effective(Some(5)), Some(7));
        for s in [
            QuotaSetting::Default,
            QuotaSetting::Unlimited,
            QuotaSetting::Limit(9),
        ] {
            assert_eq!(QuotaSetting::from_sql(s.to_sql()), s);
        }
    }
}
