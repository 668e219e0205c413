//! The HTTP/1.1 server of every test that needs one: on 127.0.0.1, one
//! request per connection (answered with `Connection: close`), a thread per
//! connection, every request logged. What it answers is up to a [`Handler`];
//! [`TestServer::start`] serves one body and misbehaves at the byte level as
//! a [`Plan`] says: errors, connections cut or stalled mid-body, slow bodies,
//! ranges.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers one request on its connection; `n` counts requests from 0.
pub type Handler = dyn Fn(&Request, usize, &mut TcpStream) -> io::Result<()> + Send + Sync;

/// How [`TestServer::start`] misbehaves.
#[derive(Clone)]
pub struct Plan {
    /// The first N requests get the headers (with the full Content-Length)
    /// and part of the body, then a closed connection.
    pub truncate_first: usize,
    /// The first N requests get this status instead of the body.
    pub status_first: Option<(u16, usize)>,
    /// The first N requests get the headers and part of the body, then
    /// nothing for [`Plan::stall_for`].
    pub stall_first: usize,
    /// How long a stalled response stays silent before the server hangs up.
    pub stall_for: Duration,
    /// How many bytes of the body a truncated or stalled response sends:
    /// half by default.
    pub break_at: Option<usize>,
    /// Send the body in pieces with pauses (about a second in all), so that
    /// concurrent clients overlap.
    pub slow: bool,
    /// Answer `Range: bytes=N-` with 206 and the rest of the body.
    pub ranges: bool,
    /// Wait this long before answering each request.
    pub delay: Duration,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            truncate_first: 0,
            status_first: None,
            stall_first: 0,
            stall_for: Duration::from_secs(2),
            break_at: None,
            slow: false,
            ranges: false,
            delay: Duration::ZERO,
        }
    }
}

/// A server on 127.0.0.1 that stops when dropped.
pub struct TestServer {
    addr: String,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `body` at any path, misbehaving as `plan` says.
    pub fn start(body: Vec<u8>, plan: Plan) -> Self {
        Self::with_handler(Arc::new(move |req, n, stream| {
            serve_body(stream, req, &body, &plan, n)
        }))
    }

    /// Answers every request with `handler`.
    pub fn with_handler(handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, handler) = (log.clone(), handler.clone());
                    // Not joined: a stalled answer must not hold up the drop.
                    std::thread::spawn(move || {
                        let _ = serve(stream, &log, &*handler);
                    });
                }
            })
        };
        Self {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The `Range` header of each request so far, in order.
    pub fn ranges(&self) -> Vec<Option<String>> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.header("range").map(str::to_owned))
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read one request from `stream`, log it and hand it to `handler`.
fn serve(mut stream: TcpStream, log: &Mutex<Vec<Request>>, handler: &Handler) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(request) = read_request(&stream)? else {
        return Ok(());
    };
    let n = {
        let mut log = log.lock().unwrap();
        log.push(request.clone());
        log.len() - 1
    };
    handler(&request, n, &mut stream)
}

/// The request line, the headers and a body of `Content-Length` bytes;
/// `None` when the client sent no complete request head.
fn read_request(stream: &TcpStream) -> io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let length = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body)?;
    Ok(Some(request))
}

/// A whole response with `Connection: close`.
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn serve_body(
    stream: &mut TcpStream,
    req: &Request,
    body: &[u8],
    plan: &Plan,
    n: usize,
) -> io::Result<()> {
    std::thread::sleep(plan.delay);
    if let Some((status, times)) = plan.status_first {
        if n < times {
            return respond(stream, status, &[], b"");
        }
    }
    let from = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|&from| plan.ranges && from < body.len());
    let (status, part) = match from {
        Some(from) => (206, &body[from..]),
        None => (200, body),
    };
    let mut header = format!(
        "HTTP/1.1 {status} OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        part.len()
    );
    if let Some(from) = from {
        header.push_str(&format!(
            "Content-Range: bytes {from}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        ));
    }
    header.push_str("\r\n");
    stream.write_all(header.as_bytes())?;
    let cut = plan.break_at.unwrap_or(part.len() / 2).min(part.len());
    if n < plan.truncate_first {
        stream.write_all(&part[..cut])?;
        stream.flush()?;
        return stream.shutdown(Shutdown::Both);
    }
    if n < plan.stall_first {
        stream.write_all(&part[..cut])?;
        stream.flush()?;
        std::thread::sleep(plan.stall_for);
        return Ok(());
    }
    if plan.slow {
        let piece = part.len().div_ceil(10).max(1);
        for chunk in part.chunks(piece) {
            stream.write_all(chunk)?;
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        stream.write_all(part)?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}
