//! A keep-alive HTTP/1.1 load generator over tokio.
//!
//! Requests are built before the run, as bytes; each connection writes one request, reads the
//! whole response (status line, headers, `Content-Length` body) and records the latency, then
//! sends the next. Nothing is parsed beyond what finding the end of a response needs, so the
//! generator costs little next to the server (its ceiling is measured against a canned-response
//! server in the same run; see [`canned_server`]).
//!
//! [`run`] is closed-loop: each connection sends its next request as soon as it has an answer.
//! [`run_scheduled`] sends each request at its due time instead (a rate-limited run) and hands
//! every response, whole, to the caller.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the connections send.
pub enum Requests {
    /// The same request again and again until the time is up.
    Repeat(Vec<u8>),
    /// Each request once, in order, until they run out or the time is up.
    Each(Vec<Vec<u8>>),
}

/// One run: where, how many connections, for how long at most.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent keep-alive connections (each has one request in flight).
    pub connections: usize,
    /// No request is started after this.
    pub duration: Duration,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Responses received.
    pub completed: u64,
    /// From the start to the last response.
    pub elapsed: Duration,
    /// `(request index, latency in ns)`; the index is 0 for [`Requests::Repeat`].
    pub samples: Vec<(usize, u64)>,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Connection failures.
    pub errors: Vec<String>,
    /// Size of a response (status line, headers and body), in bytes.
    pub response_bytes: usize,
    /// CPU time the server's threads used during the run, when the caller measured it.
    pub server_cpu: Option<Duration>,
}

impl Outcome {
    /// Responses per second.
    pub fn rps(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latencies in ns, sorted.
    pub fn sorted_latencies(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.samples.iter().map(|s| s.1).collect();
        all.sort_unstable();
        all
    }

    /// Whether every response had `status` and no connection failed.
    pub fn all(&self, status: u16) -> bool {
        self.errors.is_empty() && self.statuses.keys().all(|s| *s == status)
    }
}

/// A `GET path` request for `addr`, with extra header lines (`name: value`).
pub fn get_request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// A `POST path` request for `addr` with a JSON `body`.
pub fn post_json_request(addr: SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Runs `requests` against `load.addr` and waits for every connection to finish.
pub async fn run(load: Load, requests: Arc<Requests>) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + load.duration;
    let tasks: Vec<_> = (0..load.connections)
        .map(|_| {
            let requests = requests.clone();
            let next = next.clone();
            tokio::spawn(connection(load.addr, requests, next, deadline))
        })
        .collect();
    let mut outcome = Outcome::default();
    let mut last = start;
    for task in tasks {
        let done = match task.await {
            Ok(done) => done,
            Err(e) => {
                outcome.errors.push(format!("connection task: {e}"));
                continue;
            }
        };
        outcome.completed += done.samples.len() as u64;
        outcome.samples.extend(done.samples);
        for (status, n) in done.statuses {
            *outcome.statuses.entry(status).or_default() += n;
        }
        outcome.errors.extend(done.error);
        outcome.response_bytes = outcome.response_bytes.max(done.response_bytes);
        last = last.max(done.last.unwrap_or(start));
    }
    outcome.elapsed = last - start;
    outcome
}

#[derive(Default)]
struct Done {
    samples: Vec<(usize, u64)>,
    statuses: BTreeMap<u16, u64>,
    error: Option<String>,
    response_bytes: usize,
    last: Option<Instant>,
}

async fn connection(
    addr: SocketAddr,
    requests: Arc<Requests>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> Done {
    let mut done = Done::default();
    if let Err(e) = drive(addr, &requests, &next, deadline, &mut done).await {
        done.error = Some(format!("{addr}: {e}"));
    }
    done
}

async fn drive(
    addr: SocketAddr,
    requests: &Requests,
    next: &AtomicUsize,
    deadline: Instant,
    done: &mut Done,
) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        if Instant::now() >= deadline {
            return Ok(());
        }
        let (index, bytes) = match requests {
            Requests::Repeat(bytes) => (0, bytes.as_slice()),
            Requests::Each(all) => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match all.get(i) {
                    Some(bytes) => (i, bytes.as_slice()),
                    None => return Ok(()),
                }
            }
        };
        let sent = Instant::now();
        stream.write_all(bytes).await?;
        let (status, size) = read_response(&mut stream, &mut buf).await?;
        let now = Instant::now();
        done.samples.push((
            index,
            u64::try_from((now - sent).as_nanos()).unwrap_or(u64::MAX),
        ));
        *done.statuses.entry(status).or_default() += 1;
        done.response_bytes = size;
        done.last = Some(now);
    }
}

/// Reads one response into `buf` and removes it; returns its status and size.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u16, usize)> {
    loop {
        if let Some((status, size)) = parse_response(buf)? {
            buf.drain(..size);
            return Ok((status, size));
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    }
}

/// `Some((status, size))` once `buf` holds a whole response.
pub fn parse_response(buf: &[u8]) -> io::Result<Option<(u16, usize)>> {
    let Some(head_end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported"));
        }
    }
    let length = length.ok_or_else(|| bad("no Content-Length"))?;
    let size = head_end + 4 + length;
    Ok((buf.len() >= size).then_some((status, size)))
}

/// One response, read whole.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Header lines `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The response as received.
    pub raw: Vec<u8>,
}

impl Fetched {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a new connection and reads the response.
pub async fn fetch(addr: SocketAddr, request: &[u8]) -> io::Result<Fetched> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut buf = Vec::new();
    let (status, size) = loop {
        if let Some(found) = parse_response(&buf)? {
            break found;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    };
    Ok(split_response(status, buf[..size].to_vec()))
}

/// A whole response (`raw`, as found by [`parse_response`]) split into headers and body.
fn split_response(status: u16, raw: Vec<u8>) -> Fetched {
    let size = raw.len();
    let head_end = memchr::memmem::find(&raw, b"\r\n\r\n").unwrap_or(size);
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let headers = head
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Fetched {
        status,
        headers,
        body: raw[(head_end + 4).min(size)..].to_vec(),
        raw,
    }
}

/// One request of a scheduled run: which prepared request to send, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Index into the prepared requests (several slots may send the same bytes).
    pub request: usize,
    /// When it is due, from the start of the run.
    pub due: Duration,
}

/// A scheduled run: each [`Slot`] is sent at its due time (or, when every connection is busy,
/// as soon as one is free), so the offered rate is the schedule's, bounded by `connections`
/// requests in flight.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// The server.
    pub addr: SocketAddr,
    /// Keep-alive connections, each with at most one request in flight.
    pub connections: usize,
    /// No slot is sent later than this after the start; those left are not sent.
    pub send_limit: Duration,
    /// The longest wait for one response; past it the slot fails and its connection is replaced.
    pub response_timeout: Duration,
}

/// What happened to one slot that was sent.
#[derive(Debug)]
pub struct Answered<T> {
    /// Index of the slot in the schedule.
    pub slot: usize,
    /// When it was sent, in ns from the start.
    pub sent_ns: u64,
    /// When its response had been read whole (or the failure seen), in ns from the start.
    pub done_ns: u64,
    /// What the inspector made of the response, or why there was none (connection failure,
    /// timeout, malformed response).
    pub result: Result<T, String>,
}

/// What a scheduled run saw.
#[derive(Debug)]
pub struct ScheduledOutcome<T> {
    /// One entry per slot sent, ordered by slot.
    pub answered: Vec<Answered<T>>,
    /// Slots never sent because the send limit passed first.
    pub unsent: usize,
    /// From the start to the last response.
    pub elapsed: Duration,
}

/// Sends `slots` of `requests` to `schedule.addr` on time and passes every response, whole, to
/// `inspect` (with the slot's index) on the connection's task; waits for all of them.
pub async fn run_scheduled<T, F>(
    schedule: Schedule,
    requests: Arc<Vec<Vec<u8>>>,
    slots: Arc<Vec<Slot>>,
    inspect: Arc<F>,
) -> ScheduledOutcome<T>
where
    T: Send + 'static,
    F: Fn(usize, &Fetched) -> T + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..schedule.connections.max(1))
        .map(|_| {
            tokio::spawn(scheduled_connection(
                schedule,
                start,
                requests.clone(),
                slots.clone(),
                next.clone(),
                inspect.clone(),
            ))
        })
        .collect();
    let mut answered = Vec::with_capacity(slots.len());
    for task in tasks {
        match task.await {
            Ok(done) => answered.extend(done),
            // A panicking inspector: its connection's slots count as unsent.
            Err(e) => eprintln!("loadgen: a connection task failed: {e}"),
        }
    }
    answered.sort_unstable_by_key(|a| a.slot);
    let last = answered.iter().map(|a| a.done_ns).max().unwrap_or(0);
    ScheduledOutcome {
        unsent: slots.len() - answered.len(),
        answered,
        elapsed: Duration::from_nanos(last),
    }
}

fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

async fn scheduled_connection<T, F>(
    schedule: Schedule,
    start: Instant,
    requests: Arc<Vec<Vec<u8>>>,
    slots: Arc<Vec<Slot>>,
    next: Arc<AtomicUsize>,
    inspect: Arc<F>,
) -> Vec<Answered<T>>
where
    F: Fn(usize, &Fetched) -> T,
{
    let mut stream: Option<TcpStream> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out = Vec::new();
    let limit = start + schedule.send_limit;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = slots.get(index) else {
            return out;
        };
        tokio::time::sleep_until((start + slot.due).into()).await;
        if Instant::now() > limit {
            // Every later slot is due later still: this connection is done.
            return out;
        }
        let sent_ns = since(start);
        let answer = tokio::time::timeout(
            schedule.response_timeout,
            exchange(
                &mut stream,
                schedule.addr,
                &requests[slot.request],
                &mut buf,
            ),
        )
        .await;
        let result = match answer {
            Ok(Ok(fetched)) => Ok(inspect(index, &fetched)),
            Ok(Err(e)) => Err(format!("{}: {e}", schedule.addr)),
            Err(_) => Err(format!(
                "{}: no whole response within {:?}",
                schedule.addr, schedule.response_timeout
            )),
        };
        if result.is_err() {
            // The connection's state is unknown: start the next request on a new one.
            stream = None;
            buf.clear();
        }
        out.push(Answered {
            slot: index,
            sent_ns,
            done_ns: since(start),
            result,
        });
    }
}

/// Writes `request` on the connection (opened first if there is none) and reads one response.
async fn exchange(
    stream: &mut Option<TcpStream>,
    addr: SocketAddr,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> io::Result<Fetched> {
    let stream = match stream {
        Some(open) => open,
        None => {
            let fresh = TcpStream::connect(addr).await?;
            fresh.set_nodelay(true)?;
            stream.insert(fresh)
        }
    };
    stream.write_all(request).await?;
    let (status, size) = loop {
        if let Some(found) = parse_response(buf)? {
            break found;
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    };
    let raw: Vec<u8> = buf.drain(..size).collect();
    Ok(split_response(status, raw))
}

/// A server that answers every request with `response` without looking at it beyond finding
/// its end: the generator's ceiling on this machine (no HTTP server can answer faster).
pub async fn canned_server(response: Vec<u8>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let response: Arc<[u8]> = response.into();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
                loop {
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if stream.write_all(&response).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn finds_the_end_of_a_response() {
        let whole = b"HTTP/1.1 402 Payment Required\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(
            parse_response(whole).ok().flatten(),
            Some((402, whole.len()))
        );
        assert_eq!(
            parse_response(&whole[..whole.len() - 1]).ok().flatten(),
            None
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }
}
