//! The file sink: lines appended to a file that rotates by size. Past `max_bytes` the file is
//! renamed `<path>.1` (older ones shift up to `<path>.<keep>`, the oldest overwritten) and a new
//! one is started; a line is never split between files, and a write that fails part-way resumes
//! where it stopped, so no line is lost or written twice.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::sinks::{Sink, SinkError};
use crate::config::{FileSinkSpec, Rotation};
use crate::error::Side;

/// Where a batch stands after a failed write: lines done, and bytes of the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Progress {
    line: usize,
    byte: usize,
}

/// The file itself, written with blocking calls (the sink runs them off the async workers).
pub struct RotatingFile {
    path: PathBuf,
    rotation: Option<Rotation>,
    file: Option<File>,
    size: u64,
    progress: Progress,
    /// Rotation failed during this batch: keep writing to the current file rather than lose lines.
    rotation_blocked: bool,
}

impl RotatingFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path, rotation: Option<Rotation>) -> io::Result<Self> {
        let mut f = Self { path: path.to_owned(), rotation, file: None, size: 0, progress: Progress::default(), rotation_blocked: false };
        f.reopen()?;
        Ok(f)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    /// `<path>.<n>`.
    pub fn rotated(path: &Path, n: u32) -> PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// Writes every line, rotating between lines as the size limit requires. After an error the
    /// same lines must be passed again; writing resumes where it stopped.
    pub fn write_lines(&mut self, lines: &[Bytes]) -> io::Result<()> {
        while self.progress.line < lines.len() {
            let end = self.fitting(lines);
            if end == self.progress.line {
                if let Err(e) = self.rotate() {
                    tracing::error!(path = %self.path.display(), error = %e, "audit file cannot rotate; writing on past max_bytes");
                    self.rotation_blocked = true;
                }
                continue;
            }
            self.write_chunk(lines, end)?;
        }
        self.progress = Progress::default();
        self.rotation_blocked = false;
        Ok(())
    }

    /// Index after the last line that fits in the current file from `progress` on; a line
    /// begun, or one alone in an empty file, always fits.
    fn fitting(&self, lines: &[Bytes]) -> usize {
        let Some(max) = self.rotation.map(|r| r.max_bytes).filter(|_| !self.rotation_blocked) else {
            return lines.len();
        };
        let mut size = self.size;
        let mut end = self.progress.line;
        for (i, line) in lines.iter().enumerate().skip(self.progress.line) {
            let len = if i == self.progress.line { line.len().saturating_sub(self.progress.byte) } else { line.len() } as u64;
            let started = i == self.progress.line && self.progress.byte > 0;
            if !(started || size == 0 || size + len <= max) {
                break;
            }
            size += len;
            end = i + 1;
        }
        end
    }

    fn write_chunk(&mut self, lines: &[Bytes], end: usize) -> io::Result<()> {
        if self.file.is_none() {
            self.reopen()?;
        }
        let Progress { line, byte } = self.progress;
        let mut chunk = Vec::new();
        for (i, l) in lines.iter().enumerate().take(end).skip(line) {
            chunk.extend_from_slice(l.get(if i == line { byte } else { 0 }..).unwrap_or_default());
        }
        let mut written = 0;
        let result = loop {
            let Some(rest) = chunk.get(written..).filter(|r| !r.is_empty()) else { break Ok(()) };
            let Some(file) = self.file.as_mut() else { break Err(io::ErrorKind::NotFound.into()) };
            match file.write(rest) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.size += written as u64;
        self.advance(lines, written);
        result
    }

    /// Moves `progress` on by `n` bytes.
    fn advance(&mut self, lines: &[Bytes], mut n: usize) {
        while n > 0 {
            let Some(line) = lines.get(self.progress.line) else { return };
            let left = line.len() - self.progress.byte.min(line.len());
            if n < left {
                self.progress.byte += n;
                return;
            }
            n -= left;
            self.progress = Progress { line: self.progress.line + 1, byte: 0 };
        }
    }

    /// Renames the full file to `.1` after shifting older ones up, and starts a new one.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.map(|r| r.keep).unwrap_or(1).max(1);
        self.file = None;
        for n in (1..keep).rev() {
            match std::fs::rename(Self::rotated(&self.path, n), Self::rotated(&self.path, n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return self.reopen().and(Err(e)),
                _ => {}
            }
        }
        if let Err(e) = std::fs::rename(&self.path, Self::rotated(&self.path, 1)) {
            return self.reopen().and(Err(e));
        }
        self.reopen()
    }
}

/// The sink: the file's blocking writes on tokio's blocking pool.
pub struct FileSink {
    spec: FileSinkSpec,
    file: Option<RotatingFile>,
}

impl FileSink {
    pub fn open(spec: &FileSinkSpec) -> io::Result<Self> {
        Ok(Self { file: Some(RotatingFile::open(&spec.path, spec.rotation)?), spec: spec.clone() })
    }
}

impl Sink for FileSink {
    async fn write(&mut self, lines: &[Bytes]) -> Result<(), SinkError> {
        let retry = |reason: String| SinkError::Retry { side: Side::Proxy, reason };
        let mut file = match self.file.take() {
            Some(f) => f,
            None => {
                RotatingFile::open(&self.spec.path, self.spec.rotation).map_err(|e| retry(format!("{}: {e}", self.spec.path.display())))?
            }
        };
        let lines = lines.to_vec();
        let (file, result) = tokio::task::spawn_blocking(move || {
            let r = file.write_lines(&lines);
            (file, r)
        })
        .await
        .map_err(|e| retry(e.to_string()))?;
        self.file = Some(file);
        result.map_err(|e| retry(format!("{}: {e}", self.spec.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize, len: usize) -> Bytes {
        let head = format!("{{\"n\":{i},\"pad\":\"");
        let pad = len - head.len() - 3;
        Bytes::from(format!("{head}{}\"}}\n", "x".repeat(pad)))
    }

    fn read(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p).map(|s| s.lines().map(str::to_owned).collect()).unwrap_or_default()
    }

    #[test]
    fn rotates_at_the_size_threshold_keeping_n_files_with_whole_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let mut f = RotatingFile::open(&path, Some(Rotation { max_bytes: 250, keep: 3 })).expect("open");
        let lines: Vec<Bytes> = (0..20).map(|i| line(i, 100)).collect();
        for chunk in lines.chunks(3) {
            f.write_lines(chunk).expect("write");
        }
        // Two 100-byte lines per file: 20 lines make 10 files, of which the newest 4 remain.
        let files: Vec<Vec<String>> =
            [path.clone(), RotatingFile::rotated(&path, 1), RotatingFile::rotated(&path, 2), RotatingFile::rotated(&path, 3)]
                .iter()
                .map(|p| read(p))
                .collect();
        assert!(!RotatingFile::rotated(&path, 4).exists(), "keep 3 keeps .1 .. .3 only");
        let got: Vec<Vec<u64>> = files
            .iter()
            .map(|f| {
                f.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).expect("whole JSON line")["n"].as_u64().expect("n")).collect()
            })
            .collect();
        assert_eq!(got, vec![vec![18, 19], vec![16, 17], vec![14, 15], vec![12, 13]]);
        for p in [&path, &RotatingFile::rotated(&path, 1)] {
            assert!(std::fs::metadata(p).expect("meta").len() <= 250);
        }
    }

    fn ns(p: &Path) -> Vec<u64> {
        read(p).iter().map(|l| serde_json::from_str::<serde_json::Value>(l).expect("whole JSON line")["n"].as_u64().expect("n")).collect()
    }

    #[test]
    fn an_existing_file_counts_and_a_long_line_goes_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, line(0, 200)).expect("seed");
        let mut f = RotatingFile::open(&path, Some(Rotation { max_bytes: 250, keep: 2 })).expect("open");
        f.write_lines(&[line(1, 100)]).expect("write");
        assert_eq!((ns(&RotatingFile::rotated(&path, 1)), ns(&path)), (vec![0], vec![1]), "the 200 bytes already there count");
        f.write_lines(&[line(2, 600), line(3, 30)]).expect("write");
        assert_eq!(ns(&RotatingFile::rotated(&path, 2)), vec![1]);
        assert_eq!(ns(&RotatingFile::rotated(&path, 1)), vec![2], "a line over max_bytes fills a file alone");
        assert_eq!(ns(&path), vec![3]);
    }

    #[test]
    fn without_rotation_it_only_appends() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.jsonl");
        let mut f = RotatingFile::open(&path, None).expect("open");
        let lines: Vec<Bytes> = (0..50).map(|i| line(i, 100)).collect();
        f.write_lines(&lines).expect("write");
        drop(f);
        let mut f = RotatingFile::open(&path, None).expect("reopen appends");
        f.write_lines(&lines[..1]).expect("write");
        assert_eq!(read(&path).len(), 51);
        assert!(!RotatingFile::rotated(&path, 1).exists());
    }

    #[test]
    fn progress_resumes_mid_line_without_duplicating() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.jsonl");
        let mut f = RotatingFile::open(&path, Some(Rotation { max_bytes: 1000, keep: 1 })).expect("open");
        let lines: Vec<Bytes> = (0..3).map(|i| line(i, 100)).collect();
        // As if a first attempt had written 150 bytes and then failed.
        f.file.as_mut().expect("file").write_all(&[lines[0].to_vec(), lines[1].slice(..50).to_vec()].concat()).expect("partial");
        f.size = 150;
        f.advance(&lines, 150);
        assert_eq!(f.progress, Progress { line: 1, byte: 50 });
        f.write_lines(&lines).expect("resume");
        let got = read(&path);
        assert_eq!(got.len(), 3);
        assert_eq!(got.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes(), &lines.concat()[..]);
    }

    #[tokio::test]
    async fn the_sink_writes_through_the_blocking_pool() {
        let dir = tempfile::tempdir().expect("dir");
        let spec = FileSinkSpec { path: dir.path().join("s.jsonl"), rotation: Some(Rotation { max_bytes: 150, keep: 2 }) };
        let mut sink = FileSink::open(&spec).expect("open");
        sink.write(&[line(0, 100), line(1, 100)]).await.expect("write");
        assert_eq!(read(&spec.path).len(), 1);
        assert_eq!(read(&RotatingFile::rotated(&spec.path, 1)).len(), 1);
    }
}
