use super::stream::PREFIX_CHUNK_FOR_TESTS;
use super::*;
use std::time::{Duration, Instant};
use zstd::zstd_safe::get_dict_id_from_frame;

#[test]
fn store_load_remove() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
    let data = b"Subject: hi\r\n\r\nbody\r\n".repeat(10);
    let h = sha256(&data);
    blobs.store(&h, &data).unwrap();
    blobs.store(&h, &data).unwrap(); // second store is a no-op
    let p = blobs.path(&h);
    assert!(p.starts_with(dir.path().join("blobs").join(&hex::encode(h)[..2])));
    assert_eq!(blobs.load(&h, data.len() as u64).unwrap(), data);
    assert!(blobs.load(&h, 3).is_err(), "size mismatch must be reported");
    let longer = data.len() as u64 + 1;
    assert!(
        blobs.load(&h, longer).is_err(),
        "a short body must be reported"
    );
    blobs.remove(&h).unwrap();
    blobs.remove(&h).unwrap();
    assert!(blobs.load(&h, data.len() as u64).is_err());
}

/// Deterministic xorshift: varied messages without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn base64(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n).map(|_| A[self.below(64) as usize] as char).collect()
    }
}

const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];
const DOMAINS: &[&str] = &[
    "example.org",
    "example.com",
    "lists.example.net",
    "mail.test",
    "corp.example",
];
const WORDS: &[&str] = &[
    "the", "meeting", "report", "attached", "please", "review", "budget", "quarter", "thanks",
    "regards", "tomorrow", "schedule", "project", "update", "release", "server", "question",
    "invoice", "deadline", "agenda", "notes", "draft", "team", "customer", "issue", "fixed",
    "deploy", "weekly", "summary", "and", "of", "to", "for", "with",
];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
];

fn sentence(rng: &mut Rng) -> String {
    let n = 6 + rng.below(10);
    let words: Vec<&str> = (0..n).map(|_| rng.pick(WORDS)).collect();
    format!("{}.", words.join(" "))
}

/// A plausible 2-10 KB message: a Received chain, DKIM, MIME, some prose.
fn message(rng: &mut Rng, i: usize) -> Vec<u8> {
    let (from, to) = (rng.pick(NAMES), rng.pick(NAMES));
    let (fd, td) = (rng.pick(DOMAINS), rng.pick(DOMAINS));
    let date = format!(
        "{}, {} {} 2024 {:02}:{:02}:{:02} +0000",
        rng.pick(&["Mon", "Tue", "Wed", "Thu", "Fri"]),
        1 + rng.below(28),
        rng.pick(MONTHS),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    );
    let mut m = format!("Return-Path: <{from}@{fd}>\r\nDelivered-To: {to}@{td}\r\n");
    for hop in 0..2 + rng.below(3) {
        m += &format!(
            "Received: from mx{hop}.{fd} (mx{hop}.{fd} [192.0.2.{}])\r\n\tby mail.{td} \
             (Postfix) with ESMTPS id {:X}\r\n\tfor <{to}@{td}>; {date}\r\n",
            rng.below(255),
            rng.next() >> 24
        );
    }
    m += &format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={fd}; s=s1;\r\n\
         \th=from:to:subject:date:message-id; bh={}=;\r\n\tb={}\r\n",
        rng.base64(43),
        rng.base64(340)
    );
    m += &format!(
        "Message-ID: <{:x}.{i}@{fd}>\r\nDate: {date}\r\nFrom: {from} <{from}@{fd}>\r\n\
         To: {to} <{to}@{td}>\r\nSubject: {} {}\r\nMIME-Version: 1.0\r\n",
        rng.next(),
        rng.pick(WORDS),
        rng.pick(WORDS)
    );
    let text: String = (0..3 + rng.below(40))
        .map(|_| sentence(rng) + "\r\n")
        .collect();
    if rng.below(2) == 0 {
        m += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
        m += &text;
    } else {
        let b = format!("=_boundary_{:x}", rng.next());
        m += &format!(
            "Content-Type: multipart/alternative; boundary=\"{b}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\r\n--{b}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: \
             quoted-printable\r\n\r\n{text}\r\n--{b}\r\nContent-Type: text/html; \
             charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             <html><head><meta charset=3D\"utf-8\"></head><body><p>{}</p></body></html>\r\n\
             --{b}--\r\n",
            text.replace("\r\n", "</p><p>")
        );
    }
    m.into_bytes()
}

fn messages(seed: u64, range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    range.map(|i| message(&mut rng, i)).collect()
}

fn small_policy() -> DictPolicy {
    DictPolicy {
        min_samples: 50,
        ..DictPolicy::default()
    }
}

fn store_all(blobs: &BlobDir, msgs: &[Vec<u8>]) {
    for m in msgs {
        blobs.store(&sha256(m), m).unwrap();
    }
}

/// Each body loads whole and streams (`BlobDir::stream`) to the same bytes.
fn assert_all_load(blobs: &BlobDir, msgs: &[Vec<u8>]) {
    for m in msgs {
        assert_eq!(&blobs.load(&sha256(m), m.len() as u64).unwrap(), m);
        let mut streamed = Vec::new();
        blobs
            .stream(&sha256(m), m.len() as u64)
            .unwrap()
            .read_to_end(&mut streamed)
            .unwrap();
        assert!(&streamed == m, "streamed body differs");
        assert_prefixes(blobs, m);
    }
}

/// `BlobDir::prefix` of `m`, from its file and packed inline, at lengths from none to more
/// than all of it.
fn assert_prefixes(blobs: &BlobDir, m: &[u8]) {
    let h = sha256(m);
    let size = m.len() as u64;
    let packed = blobs.compress(m).unwrap();
    for len in [0, 1, 100, size / 2, size - 1, size, size + 5] {
        let want = &m[..len.min(size) as usize];
        let got = blobs.prefix(&h, None, size, len).unwrap();
        assert!(got == want, "prefix {len} of {size} from the file");
        let got = blobs.prefix(&h, Some(packed.clone()), size, len).unwrap();
        assert!(got == want, "prefix {len} of {size} packed");
    }
}

#[test]
fn prefix_of_a_big_body_and_of_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
    // Read in many chunks: a body that packs to far more than one chunk.
    let mut rng = Rng(7);
    let mut m = b"Subject: big\r\n\r\n".to_vec();
    m.extend_from_slice(rng.base64(400 << 10).as_bytes());
    assert!(blobs.compress(&m).unwrap().len() > 4 * PREFIX_CHUNK_FOR_TESTS);
    blobs.store(&sha256(&m), &m).unwrap();
    assert_prefixes(&blobs, &m);
    // A body shorter than its recorded size is an error, not a short header.
    let h = sha256(&m);
    let size = m.len() as u64;
    assert!(blobs.prefix(&h, None, size + 10, size + 10).is_err());
    let packed = blobs.compress(&m).unwrap();
    let cut = packed[..packed.len() / 2].to_vec();
    assert!(blobs.prefix(&h, Some(cut), size, size).is_err());
    blobs.remove(&h).unwrap();
    assert!(blobs.prefix(&h, None, size, 10).is_err(), "file gone");
}

fn dict_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join(DICT_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn frame_dict_id(blobs: &BlobDir, m: &[u8]) -> Option<u32> {
    get_dict_id_from_frame(&fs::read(blobs.path(&sha256(m))).unwrap()).map(|id| id.get())
}

fn wait_for_dictionary(blobs: &BlobDir) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(id) = blobs.dictionary_id()
            && blobs.root().join(DICT_DIR).join("1.dict").is_file()
        {
            return id;
        }
        assert!(Instant::now() < deadline, "no dictionary trained in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blob directory whose dictionary was trained from `before`; `after` was written with it.
struct Trained {
    dir: tempfile::TempDir,
    before: Vec<Vec<u8>>,
    after: Vec<Vec<u8>>,
    id: u32,
}

fn trained() -> Trained {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobDir::open_with(dir.path().join("blobs"), small_policy()).unwrap();
    let before = messages(1, 0..60);
    // Several writers at once, as in the store.
    std::thread::scope(|s| {
        for chunk in before.chunks(15) {
            let blobs = &blobs;
            s.spawn(move || store_all(blobs, chunk));
        }
    });
    let id = wait_for_dictionary(&blobs);
    let after = messages(2, 60..160);
    store_all(&blobs, &after);
    assert_all_load(&blobs, &before);
    assert_all_load(&blobs, &after);
    Trained {
        dir,
        before,
        after,
        id,
    }
}

#[test]
fn dictionary_is_trained_and_used() {
    let t = trained();
    let blobs = BlobDir::open_with(t.dir.path().join("blobs"), small_policy()).unwrap();
    assert_eq!(dict_files(blobs.root()), ["1.dict"]);
    assert_eq!(
        frame_dict_id(&blobs, &t.before[0]),
        None,
        "written before training"
    );
    let (mut with, mut without) = (0, 0);
    for m in &t.after {
        assert_eq!(frame_dict_id(&blobs, m), Some(t.id));
        with += fs::metadata(blobs.path(&sha256(m))).unwrap().len() as usize;
        without += zstd::bulk::compress(m, ZSTD_LEVEL).unwrap().len();
    }
    let m = &t.after[0];
    for wrong in [m.len() - 1, m.len() + 1] {
        let loaded = blobs.load(&sha256(m), wrong as u64);
        assert!(loaded.is_err(), "size {wrong} for {} bytes", m.len());
    }
    let plain: usize = t.after.iter().map(Vec::len).sum();
    println!("{plain} bytes: {without} compressed alone, {with} with the dictionary");
    assert!(
        with < without,
        "{with} with the dictionary, {without} without"
    );
}

#[test]
fn reopened_dir_uses_the_existing_dictionary() {
    let t = trained();
    let root = t.dir.path().join("blobs");
    let blobs = BlobDir::open_with(root.clone(), small_policy()).unwrap();
    assert_eq!(blobs.dictionary_id(), Some(t.id));
    assert!(matches!(*lock(&blobs.inner.sampling), Sampling::Off));
    assert_all_load(&blobs, &t.before);
    assert_all_load(&blobs, &t.after);
    // More than the training threshold: would retrain if it sampled.
    let more = messages(3, 160..220);
    store_all(&blobs, &more);
    for m in &more {
        assert_eq!(frame_dict_id(&blobs, m), Some(t.id));
    }
    assert_all_load(&blobs, &more);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(dict_files(&root), ["1.dict"]);
}

/// A dictionary trained by another process on the same directory (an import beside the
/// server) after this one opened it is loaded when a body needs it.
#[test]
fn dictionary_of_another_process_is_loaded_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let server = BlobDir::open_with(root.clone(), small_policy()).unwrap();
    let importer = BlobDir::open_with(root, small_policy()).unwrap();
    store_all(&importer, &messages(1, 0..60));
    let id = wait_for_dictionary(&importer);
    let after = messages(2, 60..80);
    store_all(&importer, &after);
    assert_eq!(frame_dict_id(&server, &after[0]), Some(id));
    assert_all_load(&server, &after);
}

#[test]
fn missing_dictionary_is_reported_on_load() {
    let t = trained();
    let root = t.dir.path().join("blobs");
    fs::remove_file(root.join(DICT_DIR).join("1.dict")).unwrap();
    // Open cannot tell which bodies need it without reading them all; load says so.
    let blobs = BlobDir::open(root).unwrap();
    assert_eq!(blobs.dictionary_id(), None);
    let m = &t.after[0];
    let err = blobs.load(&sha256(m), m.len() as u64).unwrap_err();
    let want = format!("needs zstd dictionary {}, which is missing", t.id);
    assert!(err.to_string().contains(&want), "{err}");
    assert_all_load(&blobs, &t.before[..10]);
}

#[test]
fn unusable_dictionary_fails_open() {
    let t = trained();
    let root = t.dir.path().join("blobs");
    let path = root.join(DICT_DIR).join("1.dict");
    let dict = fs::read(&path).unwrap();
    // Cut inside the entropy tables that follow the header.
    for damaged in [&b"not a dictionary"[..], &dict[..64]] {
        fs::write(&path, damaged).unwrap();
        let err = BlobDir::open(root.clone()).unwrap_err();
        assert!(err.to_string().contains("1.dict"), "{err}");
    }
    fs::write(&path, &dict).unwrap();
    fs::write(root.join(DICT_DIR).join("x.dict"), &dict).unwrap();
    assert!(
        BlobDir::open(root).is_err(),
        "a .dict file that is not <number>.dict"
    );
}

#[test]
fn failed_training_leaves_bodies_plain() {
    let dir = tempfile::tempdir().unwrap();
    // zstd refuses to build a dictionary under 256 bytes: training fails every time.
    let policy = DictPolicy {
        max_dict_size: 100,
        ..small_policy()
    };
    let blobs = BlobDir::open_with(dir.path().join("blobs"), policy).unwrap();
    let msgs = messages(4, 0..120);
    store_all(&blobs, &msgs);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(blobs.dictionary_id(), None);
    assert!(
        matches!(*lock(&blobs.inner.sampling), Sampling::Off),
        "not retried"
    );
    assert!(dict_files(blobs.root()).is_empty());
    assert!(msgs.iter().all(|m| frame_dict_id(&blobs, m).is_none()));
    assert_all_load(&blobs, &msgs);
}
