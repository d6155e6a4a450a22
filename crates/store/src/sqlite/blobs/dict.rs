//! The zstd dictionaries of `BlobDir` (see the parent module): samples of the first bodies,
//! one training, the dictionary files and loading those another process wrote.

use super::*;

impl BlobDir {
    /// Loads dictionaries written since open by another process on the same directory (an
    /// import running beside the server trains its own once it has seen enough bodies).
    /// They are used for reading only; new bodies keep this process's current dictionary.
    pub(super) fn load_new_dictionaries(&self) {
        let dicts = match read_dictionaries(&self.inner.root.join(DICT_DIR)) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "loading new zstd dictionaries");
                return;
            }
        };
        let mut decoders = write(&self.inner.decoders);
        let mut raw = write(&self.inner.raw);
        for (_, p) in dicts {
            if let std::collections::hash_map::Entry::Vacant(e) = decoders.entry(p.id) {
                e.insert(Arc::new(p.decoder));
                raw.insert(p.id, p.raw);
            }
        }
    }

    /// Collects a sample of a written body and starts training once there are enough.
    pub(super) fn sample(&self, data: &[u8]) {
        let Some(samples) = self.add_sample(data) else {
            return;
        };
        let blobs = self.clone();
        let spawned = std::thread::Builder::new()
            .name("mailkeep-blob-dict".into())
            .spawn(move || blobs.train(samples));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start zstd dictionary training");
        }
    }

    /// Keeps the start of `data`; returns all samples, once, when it is time to train.
    pub(super) fn add_sample(&self, data: &[u8]) -> Option<Vec<Vec<u8>>> {
        let policy = &self.inner.policy;
        let mut sampling = lock(&self.inner.sampling);
        let Sampling::Collecting { samples, bytes } = &mut *sampling else {
            return None;
        };
        let sample = &data[..data.len().min(policy.sample_len)];
        let full = *bytes + sample.len() > policy.max_sample_bytes;
        if !full && !sample.is_empty() {
            samples.push(sample.to_vec());
            *bytes += sample.len();
        }
        if samples.len() < policy.min_samples && !full {
            return None;
        }
        // Off from here on: training runs once per process, whether or not it succeeds.
        match std::mem::replace(&mut *sampling, Sampling::Off) {
            Sampling::Collecting { samples, .. } => Some(samples),
            Sampling::Off => None,
        }
    }

    /// Runs on its own thread: training takes a while and must not delay the store call.
    pub(super) fn train(&self, samples: Vec<Vec<u8>>) {
        let count = samples.len();
        let trained = zstd::dict::from_samples(&samples, self.inner.policy.max_dict_size);
        drop(samples);
        match trained
            .map_err(StoreError::from)
            .and_then(|dict| self.add_dictionary(&dict))
        {
            Ok((seq, id)) => {
                tracing::info!(
                    samples = count,
                    seq,
                    id,
                    "zstd dictionary for message bodies in use"
                )
            }
            Err(e) => tracing::warn!(
                samples = count,
                error = %e,
                "no zstd dictionary for message bodies; not retried until restart"
            ),
        }
    }

    /// Makes `dict` durable and then current; returns its file number and zstd id.
    pub(super) fn add_dictionary(&self, dict: &[u8]) -> Result<(u64, u32)> {
        let prepared = Prepared::new(dict)
            .map_err(|m| StoreError::Internal(format!("trained zstd dictionary: {m}")))?;
        let seq = self.write_dictionary(dict)?;
        let id = prepared.id;
        // Readers first: a body written with the dictionary must load as soon as it exists.
        write(&self.inner.raw).insert(id, prepared.raw);
        write(&self.inner.decoders).insert(id, Arc::new(prepared.decoder));
        *write(&self.inner.current) = Some(Arc::new(CurrentDict {
            id,
            encoder: prepared.encoder,
        }));
        Ok((seq, id))
    }

    /// Writes `dict/<seq>.dict` after the highest number seen; durable on return.
    pub(super) fn write_dictionary(&self, dict: &[u8]) -> Result<u64> {
        let dir = self.inner.root.join(DICT_DIR);
        let mut tmp = write_synced_temp(&dir, dict)?;
        let mut seq = self.inner.last_seq + 1;
        // Never replace a dictionary file (another instance may have written one since open):
        // the bodies compressed with it would become unreadable.
        loop {
            match tmp.persist_noclobber(dir.join(format!("{seq}.dict"))) {
                Ok(_) => break,
                Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
                    tmp = e.file;
                    seq += 1;
                }
                Err(e) => {
                    return Err(StoreError::Internal(format!(
                        "zstd dictionary rename: {}",
                        e.error
                    )));
                }
            }
        }
        sync_dir(&dir)?;
        Ok(seq)
    }
}

impl Prepared {
    pub(super) fn new(bytes: &[u8]) -> std::result::Result<Prepared, String> {
        // Without the zstd dictionary header there is no id to find it by from a frame.
        let id = zstd::zstd_safe::get_dict_id_from_dict(bytes)
            .ok_or("not a zstd dictionary")?
            .get();
        // `copy` below panics on a dictionary zstd rejects; `try_create` reports it instead.
        CDict::try_create(bytes, ZSTD_LEVEL).ok_or("zstd rejects it for compression")?;
        DDict::try_create(bytes).ok_or("zstd rejects it for decompression")?;
        Ok(Prepared {
            id,
            raw: bytes.into(),
            encoder: EncoderDictionary::copy(bytes, ZSTD_LEVEL),
            decoder: DecoderDictionary::copy(bytes),
        })
    }
}

/// Every `<seq>.dict` in `dir`, by ascending `seq`. Any that cannot be used is an error:
/// bodies compressed with it could not be read.
pub(super) fn read_dictionaries(dir: &Path) -> Result<Vec<(u64, Prepared)>> {
    let mut found: Vec<(u64, Prepared)> = Vec::new();
    let mut contents: HashMap<u32, (u64, Vec<u8>)> = HashMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a temporary file from an interrupted write
        }
        let Some(seq) = name.strip_suffix(".dict") else {
            tracing::warn!(file = %path.display(), "ignoring a file that is not a dictionary");
            continue;
        };
        let bad =
            |m: String| StoreError::Internal(format!("zstd dictionary {}: {m}", path.display()));
        let seq: u64 = seq
            .parse()
            .map_err(|_| bad("name is not <number>.dict".into()))?;
        let bytes = fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let prepared = Prepared::new(&bytes).map_err(bad)?;
        // Two different dictionaries under one id: a frame would not say which one it needs.
        if let Some((other, earlier)) = contents.get(&prepared.id)
            && *earlier != bytes
        {
            return Err(bad(format!(
                "has zstd id {}, as does {other}.dict with other content",
                prepared.id
            )));
        }
        contents.insert(prepared.id, (seq, bytes));
        found.push((seq, prepared));
    }
    found.sort_by_key(|(seq, _)| *seq);
    Ok(found)
}
