//! The audit log: one JSON line per HTTP request that reached the tool
//! service (and per refused authentication), in a file per UTC day under
//! `<data_dir>/audit/`. Records queue to one writer task that appends them
//! in batches and syncs each batch before taking the next (group commit),
//! so a burst costs one `fsync`, and a full queue slows requests down
//! rather than dropping records. Files older than the retention are
//! removed. `toolmesh audit` and the `toolmesh://audit` resource read it.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// The directory, in the data directory.
pub const DIR: &str = "audit";

/// How many records may wait for the writer.
const QUEUE: usize = 8192;

/// The most records one batch writes before syncing.
const BATCH: usize = 1024;

/// How long the writer lets records gather after the first of a batch.
const GATHER: Duration = Duration::from_millis(2);

/// One audited request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    /// When it arrived (ms since the Unix epoch).
    pub time_ms: u64,
    /// The client (API key name or token client), if known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client: Option<String>,
    /// The agent, if known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<String>,
    /// The peer address.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub remote: Option<String>,
    /// The MCP method (`tools/call`, ...), or `auth` for a refused
    /// authentication.
    pub method: String,
    /// The tool or resource, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    /// `ok`, `error`, `denied`, `unknown`, `unauthenticated`, `forbidden`,
    /// `rate_limited`.
    pub outcome: String,
    /// More about the outcome (a refusal's reason), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// How long it took, in microseconds.
    pub latency_us: u64,
    /// Bytes of arguments in.
    pub bytes_in: u64,
    /// Bytes of result out.
    pub bytes_out: u64,
}

enum Message {
    Record(Box<AuditRecord>),
    Flush(oneshot::Sender<()>),
}

/// Where records go: a cheap handle to the writer task.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
    dir: PathBuf,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl AuditLog {
    /// Opens the log in `dir`, keeping `retention_days` of files, with its
    /// writer on the current runtime.
    pub fn open(dir: PathBuf, retention_days: u32) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            dir: dir.clone(),
            retention: Duration::from_secs(u64::from(retention_days.max(1)) * 86_400),
            open: None,
            last_prune: None,
        };
        tokio::spawn(writer.run(rx));
        Ok(Self { tx, dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `record`; waits while the queue is full.
    pub async fn record(&self, record: AuditRecord) {
        if self
            .tx
            .send(Message::Record(Box::new(record)))
            .await
            .is_err()
        {
            tracing::error!("the audit writer is gone: a record was not written");
        }
    }

    /// Waits until every record queued so far is on disk.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

struct Writer {
    dir: PathBuf,
    retention: Duration,
    open: Option<(String, std::fs::File)>,
    last_prune: Option<SystemTime>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            // Let a burst gather, so one fsync covers more records.
            if batch.len() < BATCH {
                tokio::time::sleep(GATHER).await;
                while batch.len() < BATCH {
                    let Ok(message) = rx.try_recv() else { break };
                    batch.push(message);
                }
            }
            let mut flushes = Vec::new();
            let mut records = Vec::with_capacity(batch.len());
            for message in batch.drain(..) {
                match message {
                    Message::Record(r) => records.push(r),
                    Message::Flush(done) => flushes.push(done),
                }
            }
            // File writes block: do them off the async workers.
            let (back, result) = match tokio::task::spawn_blocking(move || {
                let result = self.write(&records);
                (self, result)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!("the audit writer panicked: {e}");
                    return;
                }
            };
            self = back;
            if let Err(e) = result {
                tracing::error!(dir = %self.dir.display(), "cannot write the audit log: {e}");
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    fn write(&mut self, records: &[Box<AuditRecord>]) -> std::io::Result<()> {
        let mut touched = false;
        for record in records {
            let day = day_of(record.time_ms);
            let file = self.file_for(&day)?;
            let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
            line.push(b'\n');
            file.write_all(&line)?;
            touched = true;
        }
        if touched && let Some((_, file)) = &self.open {
            file.sync_data()?;
        }
        self.prune();
        Ok(())
    }

    fn file_for(&mut self, day: &str) -> std::io::Result<&mut std::fs::File> {
        if self.open.as_ref().is_none_or(|(d, _)| d != day) {
            if let Some((_, old)) = &self.open {
                old.sync_data()?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(self.dir.join(format!("{day}.jsonl")))?;
            // A crash may have torn the last line: end it, so the next
            // record starts on a line of its own.
            let len = file.metadata()?.len();
            let mut last = [0u8];
            if len > 0 {
                std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1)?;
                if last[0] != b'\n' {
                    file.write_all(b"\n")?;
                }
            }
            self.open = Some((day.to_owned(), file));
        }
        match &mut self.open {
            Some((_, file)) => Ok(file),
            None => Err(std::io::Error::other("no audit file open")),
        }
    }

    /// Removes day files past the retention, at most hourly.
    fn prune(&mut self) {
        let now = SystemTime::now();
        if self
            .last_prune
            .is_some_and(|t| now.duration_since(t).unwrap_or_default() < Duration::from_secs(3600))
        {
            return;
        }
        self.last_prune = Some(now);
        let oldest = day_of(unix_ms(now).saturating_sub(self.retention.as_millis() as u64));
        for (day, path) in day_files(&self.dir) {
            if day < oldest
                && let Err(e) = std::fs::remove_file(&path)
            {
                tracing::warn!(path = %path.display(), "cannot remove an old audit file: {e}");
            }
        }
    }
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this client's.
    pub client: Option<String>,
    /// Only from this time on (ms since the Unix epoch).
    pub since_ms: Option<u64>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// The records in `dir` that pass `filter`, oldest first. Lines that do
/// not parse (a torn last line after a crash) are skipped. With a limit,
/// days are read newest first and only the newest `limit` records are ever
/// held, however long the log.
pub fn read(dir: &Path, filter: &AuditFilter) -> std::io::Result<Vec<AuditRecord>> {
    let first_day = filter.since_ms.map(day_of);
    let limit = filter.limit.unwrap_or(usize::MAX);
    let mut days: Vec<VecDeque<AuditRecord>> = Vec::new();
    let mut held = 0;
    for (day, path) in day_files(dir).into_iter().rev() {
        if held >= limit || first_day.as_ref().is_some_and(|first| day < *first) {
            break;
        }
        let mut newest = VecDeque::new();
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        for line in file.lines() {
            let Ok(record) = serde_json::from_str::<AuditRecord>(&line?) else {
                continue;
            };
            let wanted = filter.since_ms.is_none_or(|s| record.time_ms >= s)
                && filter
                    .client
                    .as_ref()
                    .is_none_or(|c| record.client.as_ref() == Some(c));
            if wanted {
                if newest.len() == limit - held {
                    newest.pop_front();
                }
                newest.push_back(record);
            }
        }
        held += newest.len();
        days.push(newest);
    }
    Ok(days.into_iter().rev().flatten().collect())
}

/// The day files in `dir`, by day, oldest first.
fn day_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let day = name.strip_suffix(".jsonl")?;
            (day.len() == 10).then(|| (day.to_owned(), e.path()))
        })
        .collect();
    files.sort();
    files
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The UTC day of `ms` as `YYYY-MM-DD` (H. Hinnant's civil-from-days).
pub fn day_of(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time_ms: u64, client: &str) -> AuditRecord {
        AuditRecord {
            time_ms,
            client: Some(client.into()),
            agent: None,
            remote: None,
            method: "tools/call".into(),
            target: Some("hello__add".into()),
            outcome: "ok".into(),
            detail: None,
            latency_us: 10,
            bytes_in: 1,
            bytes_out: 2,
        }
    }

    #[test]
    fn days_are_civil_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
        assert_eq!(day_of(1_796_083_200_000), "2026-12-01");
    }

    #[tokio::test]
    async fn records_are_durable_after_flush_and_filtered_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path().to_owned(), 30).unwrap();
        let now = unix_ms(SystemTime::now());
        log.record(record(now - 10, "a")).await;
        log.record(record(now, "b")).await;
        log.flush().await;
        let all = read(dir.path(), &AuditFilter::default()).unwrap();
        assert_eq!(all.len(), 2);
        let only_b = AuditFilter {
            client: Some("b".into()),
            ..AuditFilter::default()
        };
        assert_eq!(read(dir.path(), &only_b).unwrap(), vec![record(now, "b")]);
        let since = AuditFilter {
            since_ms: Some(now),
            ..AuditFilter::default()
        };
        assert_eq!(read(dir.path(), &since).unwrap().len(), 1);
        let newest = AuditFilter {
            limit: Some(1),
            ..AuditFilter::default()
        };
        assert_eq!(read(dir.path(), &newest).unwrap(), vec![record(now, "b")]);
    }

    #[tokio::test]
    async fn old_days_are_pruned_and_torn_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("2000-01-01.jsonl"), "{}\n").unwrap();
        let today = day_of(unix_ms(SystemTime::now()));
        std::fs::write(dir.path().join(format!("{today}.jsonl")), "{\"time_ms\":").unwrap();
        let log = AuditLog::open(dir.path().to_owned(), 30).unwrap();
        log.record(record(unix_ms(SystemTime::now()), "a")).await;
        log.flush().await;
        assert!(!dir.path().join("2000-01-01.jsonl").exists());
        // The torn line is skipped; the record after it is not lost.
        assert_eq!(read(dir.path(), &AuditFilter::default()).unwrap().len(), 1);
    }
}
