//! The stdio edge: what every line on stdin passes before rmcp sees it.
//! rmcp ignores input that is not JSON (so that an answer cannot start an
//! error storm with a peer that echoes); JSON-RPC 2.0 says to answer it
//! with `-32700 Parse error` and `id: null`, and a client left without an
//! answer waits forever. So a line that is not JSON (or not UTF-8, or
//! nested past serde_json's depth limit, or longer than [`MAX_LINE_BYTES`])
//! is answered here, at most [`ANSWERS_PER_S`] a second (the excess is
//! dropped and counted, which bounds any storm); every other line goes on to
//! rmcp unchanged, and rmcp's lines and these answers go out whole, one
//! after another.

use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream,
};
use tokio::sync::mpsc;

/// The longest line taken (rmcp's own limit).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Parse errors answered per second, at most (a burst of as many).
pub const ANSWERS_PER_S: u32 = 20;

/// Room for a message in flight between the edge and rmcp.
const PIPE_BYTES: usize = 1 << 20;

/// Puts the edge between `input`/`output` (the process's stdin and stdout)
/// and rmcp: returns the reader and writer to hand rmcp.
pub fn split<R, W>(input: R, output: W) -> (DuplexStream, DuplexStream)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (rmcp_in, to_rmcp) = tokio::io::duplex(PIPE_BYTES);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(PIPE_BYTES);
    let (answers, answered) = mpsc::channel(64);
    tokio::spawn(read(input, to_rmcp, answers));
    tokio::spawn(write(from_rmcp, answered, output));
    (rmcp_in, rmcp_out)
}

/// The answer to a message that cannot be parsed (a JSON-RPC response
/// with `id: null`, newline-terminated).
pub fn parse_error(why: &str) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {why}")},
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// Why `line` is not a JSON value rmcp could read, if it is not: exactly
/// what serde_json refuses (rmcp reads with it), nesting past its depth
/// limit, a lone surrogate in an escape and a number out of range
/// included. (Skipping the value instead, without building it, checks
/// neither escapes nor numbers: the fuzz target `jsonrpc_line` found those
/// lines going unanswered.)
pub fn unparsable(line: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(line)
        .err()
        .map(|e| e.to_string())
}

/// A token bucket of [`ANSWERS_PER_S`].
struct Allowance {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

impl Allowance {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let rate = f64::from(ANSWERS_PER_S);
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        if self.dropped == 0 {
            tracing::warn!(
                "more than {ANSWERS_PER_S} unparsable lines a second on stdin: the rest go \
                 unanswered"
            );
        }
        self.dropped += 1;
        false
    }
}

async fn read<R: AsyncRead + Unpin>(
    input: R,
    mut to_rmcp: DuplexStream,
    answers: mpsc::Sender<Vec<u8>>,
) {
    let mut input = BufReader::with_capacity(64 << 10, input);
    let mut allowance = Allowance {
        tokens: f64::from(ANSWERS_PER_S),
        at: Instant::now(),
        dropped: 0,
    };
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        let oversized = line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n');
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if oversized {
            // Skip the rest of the line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut input)
                    .take(1 << 20)
                    .read_until(b'\n', &mut rest)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            if allowance.take() {
                let why = format!("the message is over {MAX_LINE_BYTES} bytes");
                let _ = answers.send(parse_error(&why)).await;
            }
            continue;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(why) = unparsable(body) {
            tracing::debug!("unparsable line on stdin: {why}");
            if allowance.take() {
                let _ = answers.send(parse_error(&why)).await;
            }
            continue;
        }
        if to_rmcp.write_all(&line).await.is_err() {
            break;
        }
        if line.last() != Some(&b'\n') && to_rmcp.write_all(b"\n").await.is_err() {
            break;
        }
    }
    if allowance.dropped > 0 {
        tracing::warn!(
            dropped = allowance.dropped,
            "unparsable lines left unanswered"
        );
    }
    // rmcp sees the end of input.
    let _ = to_rmcp.shutdown().await;
}

async fn write<W: AsyncWrite + Unpin>(
    from_rmcp: DuplexStream,
    mut answers: mpsc::Receiver<Vec<u8>>,
    mut output: W,
) {
    let mut from_rmcp = BufReader::with_capacity(64 << 10, from_rmcp);
    // `read_until` keeps what it read in `line` when another branch wins the
    // select: the line is cleared only once written whole.
    let mut line = Vec::with_capacity(4096);
    let mut answering = true;
    loop {
        tokio::select! {
            read = from_rmcp.read_until(b'\n', &mut line) => {
                let ended = matches!(read, Ok(0) | Err(_));
                if !line.is_empty() && output.write_all(&line).await.is_err() {
                    break;
                }
                line.clear();
                if ended {
                    break;
                }
            }
            answer = answers.recv(), if answering && line.is_empty() => match answer {
                Some(answer) => {
                    if output.write_all(&answer).await.is_err() {
                        break;
                    }
                }
                None => answering = false,
            },
        }
        // Flush when nothing else is ready, so bursts go out in one write.
        if from_rmcp.buffer().is_empty() && output.flush().await.is_err() {
            break;
        }
    }
    let _ = output.flush().await;
    // Whatever rmcp wrote last is out; give a slow pipe a moment.
    let _ = tokio::time::timeout(Duration::from_secs(1), output.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;

    #[tokio::test]
    async fn unparsable_lines_get_parse_errors_and_the_rest_pass_through() {
        let (mut client_in, host_in) = tokio::io::duplex(1 << 16);
        let (host_out, client_out) = tokio::io::duplex(1 << 16);
        let (rmcp_in, mut rmcp_out) = split(host_in, host_out);
        client_in
            .write_all(
                b"not json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n\xff\xfe\n\n",
            )
            .await
            .unwrap();
        let deep = format!("{}{}\n", "[".repeat(1000), "]".repeat(1000));
        client_in.write_all(deep.as_bytes()).await.unwrap();
        // rmcp gets the valid line only.
        let mut rmcp_lines = BufReader::new(rmcp_in).lines();
        let first = rmcp_lines.next_line().await.unwrap().unwrap();
        assert!(first.contains("\"ping\""), "{first}");
        // The client gets three parse errors (not JSON, not UTF-8, too deep),
        // and then what rmcp writes.
        rmcp_out
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n")
            .await
            .unwrap();
        let mut out = BufReader::new(client_out).lines();
        let mut errors = 0;
        let mut answered = false;
        while errors < 3 || !answered {
            let line = out.next_line().await.unwrap().unwrap();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            if value["error"]["code"] == -32700 {
                assert_eq!(value["id"], serde_json::Value::Null);
                errors += 1;
            } else {
                assert_eq!(value["id"], 1);
                answered = true;
            }
        }
    }

    #[test]
    fn what_serde_json_refuses_is_unparsable() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(unparsable(nested(100).as_bytes()).is_none());
        assert!(unparsable(nested(200).as_bytes()).is_some());
        assert!(
            unparsable(br#"{"a":"\ud800"}"#).is_some(),
            "a lone surrogate"
        );
        assert!(
            unparsable(br#"{"a":1e999}"#).is_some(),
            "a number out of range"
        );
        let quoted = format!("{{\"a\":\"{}\\\"\"}}", "[".repeat(500));
        assert!(unparsable(quoted.as_bytes()).is_none(), "{quoted}");
    }

    #[tokio::test]
    async fn a_flood_of_garbage_is_answered_at_the_allowed_rate() {
        let (mut client_in, host_in) = tokio::io::duplex(1 << 20);
        let (host_out, client_out) = tokio::io::duplex(1 << 20);
        let (_rmcp_in, _rmcp_out) = split(host_in, host_out);
        for _ in 0..1_000 {
            client_in.write_all(b"garbage\n").await.unwrap();
        }
        client_in.shutdown().await.unwrap();
        let mut out = BufReader::new(client_out).lines();
        let mut answers = 0;
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(500), out.next_line()).await
        {
            answers += 1;
        }
        assert!(
            (ANSWERS_PER_S as usize..ANSWERS_PER_S as usize * 3).contains(&answers),
            "{answers} answers to 1000 bad lines"
        );
    }
}
