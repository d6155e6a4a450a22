//! Deterministic, realistic test messages (or a real corpus from disk).

use std::path::Path;

/// Small deterministic PRNG (xorshift64*).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Word used by the SEARCH tests: present in about 1 message out of 100.
pub const RARE_WORD: &str = "zanzibarian";

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "project",
    "report",
    "budget",
    "schedule",
    "review",
    "please",
    "attached",
    "update",
    "team",
    "client",
    "deadline",
    "quarter",
    "invoice",
    "server",
    "release",
    "feature",
    "customer",
    "support",
    "thanks",
    "regards",
    "tomorrow",
    "morning",
    "afternoon",
    "discussion",
    "proposal",
    "contract",
    "agreement",
    "delivery",
    "shipment",
    "order",
    "payment",
    "account",
    "password",
    "security",
    "network",
    "database",
    "backup",
    "migration",
    "performance",
    "latency",
    "memory",
    "storage",
    "mailbox",
    "message",
    "calendar",
    "conference",
    "travel",
    "hotel",
    "flight",
    "lunch",
    "dinner",
    "weekend",
    "holiday",
    "office",
    "building",
    "parking",
    "coffee",
    "question",
    "answer",
    "problem",
    "solution",
    "issue",
    "ticket",
    "priority",
    "urgent",
    "important",
    "note",
    "draft",
    "final",
    "version",
    "document",
    "spreadsheet",
    "presentation",
    "slides",
    "summary",
    "analysis",
    "results",
    "numbers",
    "growth",
    "sales",
    "marketing",
    "product",
    "design",
    "test",
    "quality",
    "process",
    "training",
    "hiring",
    "candidate",
    "interview",
    "feedback",
    "goal",
    "plan",
    "strategy",
    "risk",
    "compliance",
    "legal",
    "policy",
    "and",
    "of",
    "to",
    "in",
    "for",
    "with",
    "on",
    "we",
    "you",
    "is",
    "are",
    "be",
    "will",
    "can",
    "should",
    "would",
    "this",
    "that",
    "it",
    "our",
];
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yolanda",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "corp.example",
    "mail.test",
];
const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn words(rng: &mut Rng, n: usize, out: &mut String) {
    let mut col = 0;
    for i in 0..n {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if col + w.len() > 72 {
            out.push_str("\r\n");
            col = 0;
        } else if i > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += w.len();
    }
    out.push_str("\r\n");
}

fn addr(rng: &mut Rng) -> String {
    let n = NAMES[rng.below(NAMES.len() as u64) as usize];
    let d = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
    let mut cap = n.to_string();
    cap[..1].make_ascii_uppercase();
    format!("{cap} Example <{n}@{d}>")
}

/// One generated message of roughly `body_len` text bytes (plus an attachment if `attach`).
pub fn message(seed: u64, body_len: usize, attach: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut subj = String::new();
    let nw = 3 + rng.below(6) as usize;
    words(&mut rng, nw, &mut subj);
    let subj = subj.replace("\r\n", " ");
    let (day, mon) = (rng.below(28) + 1, MONTHS[rng.below(12) as usize]);
    let mut r: Vec<u64> = (0..12).map(|_| rng.next()).collect();
    r.iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x %= [9, 250, u64::MAX, 7, 24, 60, 60, 7, 24, 60, 60, u64::MAX][i]);
    let (from, to, cc) = (addr(&mut rng), addr(&mut rng), addr(&mut rng));
    let mut m = format!(
        "Return-Path: <bounce@example.com>\r\nReceived: from mx{}.example.com (mx.example.com [192.0.2.{}])\r\n\tby mail.test with ESMTPS id {:x}; {}, {day} {mon} 2026 {:02}:{:02}:{:02} +0000\r\n\
         From: {from}\r\nTo: {to}\r\nCc: {cc}\r\nSubject: {}\r\nDate: {}, {day} {mon} 2026 {:02}:{:02}:{:02} +0000\r\n\
         Message-ID: <{:x}.{seed}@example.com>\r\nMIME-Version: 1.0\r\n",
        r[0],
        r[1],
        r[2],
        DAYS[r[3] as usize],
        r[4],
        r[5],
        r[6],
        subj.trim_end(),
        DAYS[r[7] as usize],
        r[8],
        r[9],
        r[10],
        r[11]
    );
    let mut body = String::new();
    while body.len() < body_len {
        let nw = 20 + rng.below(60) as usize;
        words(&mut rng, nw, &mut body);
        if rng.below(5000) == 0 {
            body.push_str(RARE_WORD);
            body.push_str("\r\n");
        }
        body.push_str("\r\n");
    }
    if seed % 100 == 7 && !body.contains(RARE_WORD) {
        body.push_str(RARE_WORD);
        body.push_str("\r\n");
    }
    if attach == 0 {
        m.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
        );
        m.push_str(&body);
    } else {
        let b = format!("=_b{:x}", rng.next());
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n"
        ));
        m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        m.push_str(&body);
        m.push_str(&format!(
            "--{b}\r\nContent-Type: application/pdf; name=\"doc{seed}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"doc{seed}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut line = 0;
        for _ in 0..attach {
            m.push(B64[rng.below(64) as usize] as char);
            line += 1;
            if line == 76 {
                m.push_str("\r\n");
                line = 0;
            }
        }
        m.push_str(&format!("\r\n--{b}--\r\n"));
    }
    m.into_bytes()
}

/// The benchmark corpus: message `i` of a deterministic mailbox. About 10 % carry an
/// attachment, 3 % are exact duplicates of an earlier message; bodies 2-8 KB of text.
pub struct Corpus {
    real: Vec<Vec<u8>>,
}

impl Corpus {
    pub fn generated() -> Corpus {
        Corpus { real: Vec::new() }
    }

    /// Loads `*.eml` (or any file) from a directory, CRLF-normalised.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Corpus> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        names.sort();
        let mut real = Vec::new();
        for p in names.into_iter().filter(|p| p.is_file()) {
            let raw = std::fs::read(&p)?;
            real.push(crlf(&raw));
        }
        anyhow::ensure!(!real.is_empty(), "no messages in {}", dir.display());
        Ok(Corpus { real })
    }

    pub fn describe(&self) -> String {
        if self.real.is_empty() {
            "generated (deterministic; ~10% with attachment, 3% exact duplicates, 2-8 KB text)"
                .into()
        } else {
            format!("real corpus, {} messages cycled", self.real.len())
        }
    }

    pub fn get(&self, i: u64) -> Vec<u8> {
        if !self.real.is_empty() {
            return self.real[(i % self.real.len() as u64) as usize].clone();
        }
        let mut rng = Rng::new(i ^ 0xC0FFEE);
        let src = if i > 10 && rng.below(100) < 3 {
            rng.below(i)
        } else {
            i
        };
        let mut r2 = Rng::new(src ^ 0xBEEF);
        let attach = if r2.below(10) == 0 {
            8_000 + r2.below(40_000) as usize
        } else {
            0
        };
        message(src, 2_000 + r2.below(6_000) as usize, attach)
    }
}

/// A ~5 KB message for APPEND tests.
pub fn five_kb(seed: u64) -> Vec<u8> {
    message(seed.wrapping_add(1_000_000_007), 4_600, 0)
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}
