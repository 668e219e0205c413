//! QEMU's machine protocol (QMP) on a unix socket: just enough to save a
//! running guest to a file and to see that a restored one runs.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// How often a state is polled.
const POLL: Duration = Duration::from_millis(5);
/// Bytes per second a save may write: no limit in practice.
const MAX_BANDWIDTH: u64 = 64 << 30;

pub struct Monitor {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl Monitor {
    /// Connects as soon as QEMU listens, at most until `deadline`.
    pub async fn connect(path: &Path, deadline: Instant) -> Result<Monitor, String> {
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "cannot reach QEMU's monitor {}: {e}",
                        path.display()
                    ))
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        };
        let (read, write) = stream.into_split();
        let mut monitor = Monitor {
            lines: BufReader::new(read).lines(),
            write,
        };
        monitor.reply(deadline).await?; // the greeting
        monitor
            .execute("qmp_capabilities", json!({}), deadline)
            .await?;
        Ok(monitor)
    }

    /// Runs one command; its `return` value, or QEMU's error as text.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Value,
        deadline: Instant,
    ) -> Result<Value, String> {
        let mut line = json!({ "execute": command, "arguments": arguments }).to_string();
        line.push('\n');
        self.write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("QEMU's monitor: {e}"))?;
        let reply = self.reply(deadline).await?;
        match reply.get("error") {
            Some(error) => Err(format!(
                "QEMU refused {command}: {}",
                error["desc"].as_str().unwrap_or("no reason given")
            )),
            None => Ok(reply["return"].clone()),
        }
    }

    /// The next message that is not an event.
    async fn reply(&mut self, deadline: Instant) -> Result<Value, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match tokio::time::timeout(left, self.lines.next_line()).await {
                Err(_) => return Err("QEMU's monitor did not answer in time".to_owned()),
                Ok(Err(e)) => return Err(format!("QEMU's monitor: {e}")),
                Ok(Ok(None)) => return Err("QEMU closed its monitor".to_owned()),
                Ok(Ok(Some(line))) => line,
            };
            let message: Value = serde_json::from_str(&line)
                .map_err(|e| format!("QEMU's monitor said {line:?}: {e}"))?;
            if message.get("event").is_none() {
                return Ok(message);
            }
        }
    }

    /// Polls `query` until `done` says the answer is final.
    async fn poll_until<T>(
        &mut self,
        query: &str,
        deadline: Instant,
        mut done: impl FnMut(&Value) -> Option<Result<T, String>>,
    ) -> Result<T, String> {
        loop {
            let answer = self.execute(query, json!({}), deadline).await?;
            if let Some(result) = done(&answer) {
                return result;
            }
            if Instant::now() >= deadline {
                return Err(format!("{query} did not settle in time: {answer}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves the running guest into `path` and lets it run on.
    pub async fn save(&mut self, path: &Path, deadline: Instant) -> Result<(), String> {
        // QEMU caps a migration at 128 MiB/s by default: most of a second
        // for a 100 MB guest, with the disk far faster.
        let unlimited = json!({ "max-bandwidth": MAX_BANDWIDTH });
        self.execute("migrate-set-parameters", unlimited, deadline)
            .await?;
        let uri = format!("file:{}", path.display());
        self.execute("migrate", json!({ "uri": uri }), deadline)
            .await?;
        self.poll_until("query-migrate", deadline, |answer| {
            match answer["status"].as_str() {
                Some("completed") => Some(Ok(())),
                Some("failed" | "cancelled") => Some(Err(format!(
                    "saving the guest failed: {}",
                    answer["error-desc"].as_str().unwrap_or("no reason given")
                ))),
                _ => None,
            }
        })
        .await?;
        // A completed migration leaves the source paused.
        self.execute("cont", json!({}), deadline).await.map(drop)
    }

    /// Waits until the guest runs (a restore has finished loading).
    pub async fn running(&mut self, deadline: Instant) -> Result<(), String> {
        self.poll_until("query-status", deadline, |answer| {
            match answer["status"].as_str() {
                Some("running") => Some(Ok(())),
                Some("inmigrate" | "prelaunch" | "paused") | None => None,
                Some(other) => Some(Err(format!("the restored guest is {other}"))),
            }
        })
        .await
    }
}
