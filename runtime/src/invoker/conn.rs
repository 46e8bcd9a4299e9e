//! The HTTP/1.1 client connection of function calls: one request, one reply, in the caller's
//! own future.
//!
//! A [`Connection`] owns its stream (TCP, or TLS over TCP for `https://`) and a read buffer that
//! lives as long as the connection. It runs no task of its own: the invocation that checked it
//! out of the pool ([`super::pool`]) writes the request, reads the reply and hands it back. This
//! replaces hyper's client connection (a task per connection, a dispatch channel and a oneshot
//! per request) with the few steps a function call needs:
//!
//! - **request**: the target's precomputed head (request line and fixed headers, see
//!   `http.rs`), `Content-Length` and the body in one vectored write;
//! - **reply head**: parsed with `httparse`; `1xx` interim replies (`100 Continue`) are
//!   skipped; a head over [`MAX_HEAD_BYTES`] or with more than [`MAX_HEADERS`] headers is
//!   refused;
//! - **reply body**: by `Content-Length`, by `Transfer-Encoding: chunked` (chunk extensions and
//!   trailers are read and ignored), or up to the end of the stream when neither is given;
//!   never more than the caller's limit;
//! - **reuse**: after a reply read to its end, unless the reply said `Connection: close`, was
//!   HTTP/1.0 without `Connection: keep-alive`, was delimited by the end of the stream, carried
//!   both `Transfer-Encoding` and `Content-Length`, or was followed by unexpected bytes;
//! - **idle check**: before a pooled connection is reused, one non-blocking read tells whether
//!   the server closed it (end of stream, an error, or bytes nobody asked for).
//!
//! Failures are [`ConnError`]s; [`ConnError::before_reply`] tells the caller when nothing of a
//! reply arrived, so that a request on a connection the server had closed can be repeated on a
//! new one.

use bytes::{Buf as _, BytesMut};
use std::borrow::Cow;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Largest reply head (status line and headers), and largest trailer section, in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in a reply head.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size and extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Initial read buffer, and the least free space offered to one read.
const READ_CHUNK: usize = 8 * 1024;
/// Most free space offered to one read (large bodies).
const MAX_READ: usize = 64 * 1024;
/// Most room set aside for a body before its bytes arrive.
const MAX_RESERVE: usize = 1024 * 1024;
/// A read buffer that grew beyond this is released once its reply is read.
const KEEP_BUFFER: usize = 64 * 1024;

/// The byte stream of a connection: TCP, or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS session is over a kilobyte, and idle connections wait in the pool.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ConnError {
    /// Writing the request failed.
    Write(io::Error),
    /// Reading the reply failed; `received` says whether any byte of it had arrived.
    Read { error: io::Error, received: bool },
    /// The server closed the connection before the reply was complete; `received` says
    /// whether any byte of it had arrived.
    Closed { received: bool },
    /// The reply breaks HTTP/1.1.
    Malformed(String),
    /// The reply head (or the trailer section) is longer than [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// The reply body is longer than the caller's limit (the limit).
    BodyTooLarge(usize),
    /// No byte of the body arrived within the read timeout.
    Stalled(Duration),
}

impl ConnError {
    /// True if the failure happened before any byte of the reply arrived and looks like a
    /// connection the server had closed: the request may then be repeated on a new connection.
    pub fn before_reply(&self) -> bool {
        match self {
            ConnError::Write(_) => true,
            ConnError::Closed { received } => !received,
            ConnError::Read { error, received } => {
                !received
                    && matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::UnexpectedEof
                    )
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Write(_) => f.write_str("sending the request failed"),
            ConnError::Read { .. } => f.write_str("reading the reply failed"),
            ConnError::Closed { received: false } => {
                f.write_str("the connection closed before the reply")
            }
            ConnError::Closed { received: true } => {
                f.write_str("the connection closed in the middle of the reply")
            }
            ConnError::Malformed(detail) => write!(f, "malformed reply: {detail}"),
            ConnError::HeadTooLarge => {
                write!(f, "reply head or trailers exceed {MAX_HEAD_BYTES} bytes")
            }
            ConnError::BodyTooLarge(limit) => write!(f, "reply body exceeds {limit} bytes"),
            ConnError::Stalled(limit) => write!(f, "no reply bytes within {limit:?}"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Write(error) | ConnError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// How a reply body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes (0 for replies that have no body: 204, 304).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// At the end of the stream.
    Eof,
}

/// A final reply head: what the transport checks, and how the body is framed.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub status: u16,
    /// The first `Content-Type` header, if any (lossy UTF-8).
    pub content_type: Option<Cow<'static, str>>,
    /// Every `Content-Encoding` header value (lossy UTF-8).
    pub content_encoding: Vec<String>,
    /// The `Content-Length` header, if any.
    pub content_length: Option<u64>,
    pub framing: Framing,
    /// The server allows another request on this connection after this reply.
    pub keep_alive: bool,
}

/// One HTTP/1.1 client connection (see the module docs). `S` is the stream; tests use others.
pub struct Connection<S = Stream> {
    stream: S,
    /// Bytes read and not consumed yet.
    buffer: BytesMut,
    /// The head of the request being sent.
    head: Vec<u8>,
    /// The last reply was read to its end and the connection may carry another request.
    reusable: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Connection<S> {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            head: Vec::new(),
            reusable: false,
        }
    }

    /// Writes one request: `prefix` (request line and headers, each ending in CRLF), the
    /// `Content-Length` of `body`, the blank line and `body`, in one vectored write when the
    /// socket takes it all.
    pub async fn send(&mut self, prefix: &[u8], body: &[u8]) -> Result<(), ConnError> {
        self.reusable = false;
        self.head.clear();
        self.head.extend_from_slice(prefix);
        self.head.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut self.head, body.len());
        self.head.extend_from_slice(b"\r\n\r\n");
        write_all_vectored(&mut self.stream, &self.head, body)
            .await
            .map_err(ConnError::Write)?;
        self.stream.flush().await.map_err(ConnError::Write)
    }

    /// Reads the final reply head, skipping interim (`1xx`) replies.
    pub async fn read_head(&mut self) -> Result<Head, ConnError> {
        let mut received = false;
        loop {
            if !self.buffer.is_empty() {
                received = true;
                match parse_head(&self.buffer)? {
                    Parsed::Final(length, head) => {
                        self.buffer.advance(length);
                        return Ok(head);
                    }
                    Parsed::Interim(length) => {
                        self.buffer.advance(length);
                        continue;
                    }
                    Parsed::Partial => {}
                }
            }
            let read = read_more(&mut self.stream, &mut self.buffer, READ_CHUNK)
                .await
                .map_err(|error| ConnError::Read { error, received })?;
            if read == 0 {
                return Err(ConnError::Closed { received });
            }
        }
    }

    /// Appends the body of the reply whose head was `head` to `out`, failing once it would
    /// hold more than `limit` bytes (what arrived up to the limit stays in `out`). `read`
    /// bounds each wait for more bytes.
    pub async fn read_body(
        &mut self,
        head: &Head,
        out: &mut BytesMut,
        limit: usize,
        read: Option<Duration>,
    ) -> Result<(), ConnError> {
        let mut decoder = Decoder::new(head.framing);
        if let Framing::Length(length) = head.framing {
            // Room for the whole body at once, up to a bound: the length is the server's word.
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            out.reserve(length.min(limit).min(MAX_RESERVE));
        }
        loop {
            if decoder.decode(&mut self.buffer, out, limit)? {
                break;
            }
            let want = decoder.wants();
            let more = read_more(&mut self.stream, &mut self.buffer, want);
            let result = match read {
                Some(read) => tokio::time::timeout(read, more)
                    .await
                    .map_err(|_elapsed| ConnError::Stalled(read))?,
                None => more.await,
            };
            let count = result.map_err(|error| ConnError::Read {
                error,
                received: true,
            })?;
            if count == 0 {
                if decoder.ends_at_eof() {
                    break;
                }
                return Err(ConnError::Closed { received: true });
            }
        }
        self.reusable = head.keep_alive && head.framing != Framing::Eof && self.buffer.is_empty();
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = BytesMut::new();
        }
        Ok(())
    }

    /// True once a reply was read to its end and the server allows another request.
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// One non-blocking read: true if nothing is waiting on the idle connection (it is still
    /// open), false if the server closed it, it failed, or it sent bytes nobody asked for.
    pub fn is_idle_usable(&mut self) -> bool {
        if !self.reusable || !self.buffer.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.stream).poll_read(&mut cx, &mut probe) {
            Poll::Pending => true,
            // The end of the stream, or unexpected bytes.
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(_)) => false,
        }
    }
}

/// Writes `head` then `body`, as few writes as the stream allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    io: &mut W,
    head: &[u8],
    body: &[u8],
) -> io::Result<()> {
    let mut slices = [IoSlice::new(head), IoSlice::new(body)];
    let mut left: &mut [IoSlice<'_>] = &mut slices;
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        let written = io.write_vectored(left).await?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the connection accepts no more bytes",
            ));
        }
        IoSlice::advance_slices(&mut left, written);
    }
    Ok(())
}

/// Reads once into `buffer`, offering at least `want` bytes of room (within bounds).
async fn read_more<R: AsyncRead + Unpin>(
    io: &mut R,
    buffer: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    let want = want.clamp(READ_CHUNK, MAX_READ);
    if buffer.capacity() - buffer.len() < want {
        buffer.reserve(want);
    }
    io.read_buf(buffer).await
}

fn push_decimal(out: &mut Vec<u8>, mut value: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The outcome of parsing the start of the read buffer.
#[derive(Debug)]
enum Parsed {
    /// More bytes are needed.
    Partial,
    /// An interim (`1xx`) reply of this many bytes, to skip.
    Interim(usize),
    /// The final head, of this many bytes.
    Final(usize, Head),
}

/// Parses a reply head at the start of `bytes`.
fn parse_head(bytes: &[u8]) -> Result<Parsed, ConnError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD_BYTES => {
            return Err(ConnError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ConnError::Malformed(format!(
                "more than {MAX_HEADERS} headers"
            )))
        }
        Err(error) => return Err(ConnError::Malformed(format!("{error} in the head"))),
    };
    if length > MAX_HEAD_BYTES {
        return Err(ConnError::HeadTooLarge);
    }
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return Err(ConnError::Malformed("incomplete status line".into()));
    };
    match status {
        101 => {
            return Err(ConnError::Malformed(
                "unexpected 101 switching protocols".into(),
            ))
        }
        100..=199 => return Ok(Parsed::Interim(length)),
        _ => {}
    }

    let mut content_type = None;
    let mut content_encoding = Vec::new();
    let mut content_length: Option<u64> = None;
    let mut transfer_chunked: Option<bool> = None;
    let mut close = false;
    let mut keep_alive_token = false;
    for header in response.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-type") {
            if content_type.is_none() {
                content_type = Some(if value == b"application/octet-stream" {
                    Cow::Borrowed("application/octet-stream")
                } else {
                    Cow::Owned(String::from_utf8_lossy(value).into_owned())
                });
            }
        } else if name.eq_ignore_ascii_case("content-encoding") {
            content_encoding.push(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(|byte| *byte == b',') {
                let parsed = parse_content_length(part).ok_or_else(|| {
                    ConnError::Malformed(format!(
                        "invalid content-length {:?}",
                        String::from_utf8_lossy(value)
                    ))
                })?;
                match content_length {
                    Some(seen) if seen != parsed => {
                        return Err(ConnError::Malformed(
                            "conflicting content-length headers".into(),
                        ))
                    }
                    _ => content_length = Some(parsed),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in tokens(value) {
                transfer_chunked = Some(coding.eq_ignore_ascii_case(b"chunked"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                }
            }
        }
    }

    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked to.
    let mut keep_alive = !close && (version >= 1 || keep_alive_token);
    let framing = if status == 204 || status == 304 {
        Framing::Length(0)
    } else {
        match transfer_chunked {
            Some(chunked) => {
                // Both headers: the transfer coding wins, and the connection is not trusted
                // with another request (a sign of request smuggling).
                if content_length.is_some() {
                    keep_alive = false;
                }
                if chunked {
                    Framing::Chunked
                } else {
                    Framing::Eof
                }
            }
            None => match content_length {
                Some(length) => Framing::Length(length),
                None => Framing::Eof,
            },
        }
    };
    Ok(Parsed::Final(
        length,
        Head {
            status,
            content_type,
            content_encoding,
            content_length,
            framing,
            keep_alive,
        },
    ))
}

/// A decimal `Content-Length` (surrounding spaces allowed).
fn parse_content_length(text: &[u8]) -> Option<u64> {
    let digits = text.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for digit in digits {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some(value)
}

/// The non-empty comma-separated tokens of a header value.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|byte| *byte == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one, this many bytes seen.
    Trailers(usize),
}

/// Takes a reply body out of the read buffer (no I/O: fed by [`Connection::read_body`]).
#[derive(Debug)]
enum Decoder {
    Length(u64),
    Chunked(Chunk),
    Eof,
    Done,
}

impl Decoder {
    fn new(framing: Framing) -> Decoder {
        match framing {
            Framing::Length(0) => Decoder::Done,
            Framing::Length(length) => Decoder::Length(length),
            Framing::Chunked => Decoder::Chunked(Chunk::Size),
            Framing::Eof => Decoder::Eof,
        }
    }

    /// A hint of how many bytes the body still needs.
    fn wants(&self) -> usize {
        match self {
            Decoder::Length(left) | Decoder::Chunked(Chunk::Data(left)) => {
                usize::try_from(*left).unwrap_or(usize::MAX)
            }
            _ => READ_CHUNK,
        }
    }

    /// True if the end of the stream ends the body.
    fn ends_at_eof(&self) -> bool {
        matches!(self, Decoder::Eof | Decoder::Done)
    }

    /// Moves body bytes from `input` to `out`; true once the body is complete (the bytes after
    /// it stay in `input`).
    fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<bool, ConnError> {
        loop {
            match self {
                Decoder::Done => return Ok(true),
                Decoder::Eof => {
                    let count = input.len();
                    append(out, input, count, limit)?;
                    return Ok(false);
                }
                Decoder::Length(left) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    append(out, input, take, limit)?;
                    *left -= take as u64;
                    if *left > 0 {
                        return Ok(false);
                    }
                    *self = Decoder::Done;
                }
                Decoder::Chunked(state) => match *state {
                    Chunk::Size => {
                        let (content, total) = match line_end(input, MAX_CHUNK_LINE) {
                            Line::Partial => return Ok(false),
                            Line::TooLong => {
                                return Err(ConnError::Malformed(format!(
                                    "chunk-size line longer than {MAX_CHUNK_LINE} bytes"
                                )))
                            }
                            Line::Complete { content, total } => (content, total),
                        };
                        let size = chunk_size(&input[..content])?;
                        input.advance(total);
                        *state = if size == 0 {
                            Chunk::Trailers(0)
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(left) => {
                        let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                        if take == 0 {
                            return Ok(false);
                        }
                        append(out, input, take, limit)?;
                        let left = left - take as u64;
                        *state = if left == 0 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left)
                        };
                    }
                    Chunk::DataEnd => match input.first() {
                        None => return Ok(false),
                        Some(b'\n') => {
                            input.advance(1);
                            *state = Chunk::Size;
                        }
                        Some(b'\r') => match input.get(1) {
                            None => return Ok(false),
                            Some(b'\n') => {
                                input.advance(2);
                                *state = Chunk::Size;
                            }
                            Some(_) => return Err(missing_chunk_end()),
                        },
                        Some(_) => return Err(missing_chunk_end()),
                    },
                    Chunk::Trailers(seen) => {
                        let room = MAX_HEAD_BYTES.saturating_sub(seen);
                        let (content, total) = match line_end(input, room) {
                            Line::Partial => return Ok(false),
                            Line::TooLong => return Err(ConnError::HeadTooLarge),
                            Line::Complete { content, total } => (content, total),
                        };
                        if content == 0 {
                            input.advance(total);
                            *self = Decoder::Done;
                        } else if !input[..content].contains(&b':') {
                            return Err(ConnError::Malformed(
                                "trailer line without a colon".into(),
                            ));
                        } else {
                            input.advance(total);
                            *state = Chunk::Trailers(seen + total);
                        }
                    }
                },
            }
        }
    }
}

fn missing_chunk_end() -> ConnError {
    ConnError::Malformed("chunk data not followed by CRLF".into())
}

/// Moves `count` bytes from the front of `input` to `out`, failing past `limit` bytes in
/// `out` (after moving what fits).
fn append(
    out: &mut BytesMut,
    input: &mut BytesMut,
    count: usize,
    limit: usize,
) -> Result<(), ConnError> {
    let room = limit.saturating_sub(out.len());
    if count > room {
        out.extend_from_slice(&input[..room]);
        input.advance(room);
        return Err(ConnError::BodyTooLarge(limit));
    }
    out.extend_from_slice(&input[..count]);
    input.advance(count);
    Ok(())
}

/// Where the first line of a buffer ends.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// No line end yet.
    Partial,
    /// The line is longer than allowed.
    TooLong,
    /// `content` bytes of line, `total` with its CRLF (or LF).
    Complete { content: usize, total: usize },
}

/// Finds the end of the first line of `input`, which may hold at most `max` bytes.
fn line_end(input: &[u8], max: usize) -> Line {
    let window = &input[..input.len().min(max.saturating_add(2))];
    match memchr::memchr(b'\n', window) {
        Some(end) => {
            let content = if end > 0 && input[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if content > max {
                Line::TooLong
            } else {
                Line::Complete {
                    content,
                    total: end + 1,
                }
            }
        }
        None if input.len() > max.saturating_add(1) => Line::TooLong,
        None => Line::Partial,
    }
}

/// The size of a chunk-size line (hex, then optional `;` extensions, ignored).
fn chunk_size(line: &[u8]) -> Result<u64, ConnError> {
    let digits = match line.iter().position(|byte| *byte == b';') {
        Some(end) => &line[..end],
        None => line,
    }
    .trim_ascii();
    let invalid = || {
        ConnError::Malformed(format!(
            "invalid chunk size {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid());
    }
    let mut size: u64 = 0;
    for digit in digits {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => return Err(invalid()),
        };
        size = (size << 4) | u64::from(value);
    }
    Ok(size)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::invoker::call::tests::wait_for;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use tokio::net::TcpListener;

    /// A stream that hands out its pieces one read at a time (then the end of the stream) and
    /// keeps what is written to it.
    struct Pieces {
        pieces: VecDeque<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Pieces {
        fn new(pieces: Vec<Vec<u8>>) -> Pieces {
            Pieces {
                pieces: pieces.into(),
                written: Vec::new(),
            }
        }

        /// `bytes` split before each of `cuts`.
        fn split(bytes: &[u8], cuts: &[usize]) -> Pieces {
            let mut pieces = Vec::new();
            let mut start = 0;
            let mut cuts = cuts.to_vec();
            cuts.sort_unstable();
            for cut in cuts {
                let cut = cut.min(bytes.len());
                if cut > start {
                    pieces.push(bytes[start..cut].to_vec());
                    start = cut;
                }
            }
            pieces.push(bytes[start..].to_vec());
            Pieces::new(pieces)
        }

        fn bytewise(bytes: &[u8]) -> Pieces {
            Pieces::new(bytes.iter().map(|byte| vec![*byte]).collect())
        }
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(mut piece) = self.pieces.pop_front() {
                let count = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..count]);
                if count < piece.len() {
                    self.pieces.push_front(piece.split_off(count));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Pieces {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// What reading one reply gave: head, body, and whether the connection is reusable.
    type Read = (Head, Bytes, bool);

    async fn read_reply_from(pieces: Pieces, limit: usize) -> Result<Read, ConnError> {
        let mut connection = Connection::new(pieces);
        let head = connection.read_head().await?;
        let mut body = BytesMut::new();
        connection.read_body(&head, &mut body, limit, None).await?;
        let reusable = connection.is_reusable();
        Ok((head, body.freeze(), reusable))
    }

    async fn read_reply(bytes: &[u8]) -> Result<Read, ConnError> {
        read_reply_from(Pieces::new(vec![bytes.to_vec()]), 1 << 20).await
    }

    fn malformed(result: Result<Read, ConnError>) -> String {
        match result {
            Err(ConnError::Malformed(detail)) => detail,
            other => panic!("expected a malformed reply, got {other:?}"),
        }
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
        Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; ext ; other=\"x\"\r\n \
        world\r\nA\r\n0123456789\r\n0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";

    #[tokio::test]
    async fn content_length_reply() {
        let (head, body, reusable) = read_reply(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
              content-length: 5\r\nContent-Encoding: gzip\r\n\r\nhello",
        )
        .await
        .expect("reply");
        assert_eq!(head.status, 200);
        assert_eq!(
            head.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(head.content_encoding, vec!["gzip".to_string()]);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(&body[..], b"hello");
        assert!(reusable);
    }

    #[tokio::test]
    async fn chunked_reply_with_extensions_and_trailers() {
        let (head, body, reusable) = read_reply(CHUNKED).await.expect("reply");
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(&body[..], b"hello world0123456789");
        assert!(reusable);
    }

    #[tokio::test]
    async fn chunked_reply_with_bare_line_feeds() {
        let (_, body, reusable) =
            read_reply(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n")
                .await
                .expect("reply");
        assert_eq!(&body[..], b"abc");
        assert!(reusable);
    }

    #[tokio::test]
    async fn reply_without_length_is_read_to_the_end_of_the_stream() {
        let (head, body, reusable) = read_reply(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the end",
        )
        .await
        .expect("reply");
        assert_eq!(head.framing, Framing::Eof);
        assert_eq!(head.content_type.as_deref(), Some("text/plain"));
        assert_eq!(&body[..], b"all of this, until the end");
        assert!(!reusable, "the end of the stream ended the reply");
    }

    #[tokio::test]
    async fn connection_close_and_http_1_0_are_not_reused() {
        let read = |text: &'static str| async move {
            let (head, body, reusable) = read_reply(text.as_bytes()).await.expect("reply");
            assert_eq!(&body[..], b"ok");
            (head.keep_alive, reusable)
        };
        assert_eq!(
            read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok").await,
            (false, false)
        );
        assert_eq!(
            read("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 2\r\n\r\nok")
                .await,
            (false, false)
        );
        assert_eq!(
            read("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await,
            (false, false)
        );
        assert_eq!(
            read("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok").await,
            (true, true)
        );
        assert_eq!(
            read("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok").await,
            (true, true)
        );
    }

    #[tokio::test]
    async fn interim_replies_are_skipped() {
        let (head, body, reusable) = read_reply(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
        .await
        .expect("reply");
        assert_eq!(head.status, 200);
        assert_eq!(&body[..], b"ok");
        assert!(reusable);
        let detail = malformed(read_reply(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").await);
        assert!(detail.contains("101"), "{detail}");
    }

    #[tokio::test]
    async fn replies_split_byte_by_byte() {
        let continued = [&b"HTTP/1.1 100 Continue\r\n\r\n"[..], CHUNKED, b"more"].concat();
        let mut connection = Connection::new(Pieces::bytewise(&continued));
        let head = connection.read_head().await.expect("head");
        assert_eq!(head.status, 200);
        let mut body = BytesMut::new();
        connection
            .read_body(&head, &mut body, 1 << 20, None)
            .await
            .expect("body");
        assert_eq!(&body[..], b"hello world0123456789");
        // The bytes after the reply had not arrived yet: the idle check finds them.
        assert!(connection.is_reusable());
        assert!(!connection.is_idle_usable());

        // Bytes that arrived with the reply make the connection unusable at once.
        let (_, _, reusable) = read_reply(&[CHUNKED, b"more"].concat())
            .await
            .expect("reply");
        assert!(!reusable, "unexpected bytes followed the reply");

        let plain = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
        let (head, body, reusable) = read_reply_from(Pieces::bytewise(plain), 1 << 20)
            .await
            .expect("reply");
        assert_eq!(head.status, 404);
        assert_eq!(&body[..], b"not found");
        assert!(reusable);
    }

    #[tokio::test]
    async fn malformed_heads_are_refused() {
        let detail = malformed(read_reply(b"HTTP/1.1 OK\r\n\r\n").await);
        assert_eq!(detail, "invalid response status in the head");
        let detail = malformed(read_reply(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await);
        assert_eq!(detail, "invalid HTTP version in the head");
        let detail = malformed(read_reply(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n").await);
        assert_eq!(detail, "invalid header name in the head");
        let detail = malformed(read_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n").await);
        assert_eq!(detail, "invalid content-length \"12x\"");
        let detail = malformed(
            read_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
                .await,
        );
        assert_eq!(detail, "conflicting content-length headers");
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: y\r\n")).collect();
        let detail =
            malformed(read_reply(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()).await);
        assert_eq!(detail, format!("more than {MAX_HEADERS} headers"));
    }

    #[tokio::test]
    async fn malformed_chunked_bodies_are_refused() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let detail = malformed(read_reply(format!("{head}xyz\r\n").as_bytes()).await);
        assert_eq!(detail, "invalid chunk size \"xyz\"");
        let detail = malformed(read_reply(format!("{head}3\r\nabcd\r\n").as_bytes()).await);
        assert_eq!(detail, "chunk data not followed by CRLF");
        let detail = malformed(read_reply(format!("{head}1000000000000000\r\n").as_bytes()).await);
        assert!(detail.starts_with("invalid chunk size"), "{detail}");
        let detail =
            malformed(read_reply(format!("{head}0\r\nnot a trailer\r\n\r\n").as_bytes()).await);
        assert_eq!(detail, "trailer line without a colon");
        let long = format!("{head}1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        let detail = malformed(read_reply(long.as_bytes()).await);
        assert!(
            detail.starts_with("chunk-size line longer than"),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn oversize_heads_are_refused() {
        // A head that never ends.
        let endless = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
        let pieces = Pieces::split(endless.as_bytes(), &[1000, 30_000, 60_000]);
        assert!(matches!(
            read_reply_from(pieces, 1 << 20).await,
            Err(ConnError::HeadTooLarge)
        ));
        // A complete head that is too long.
        let long = format!(
            "HTTP/1.1 200 OK\r\nx-big: {}\r\nContent-Length: 0\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(matches!(
            read_reply(long.as_bytes()).await,
            Err(ConnError::HeadTooLarge)
        ));
        // Endless trailers.
        let trailers = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{}",
            "x-t: 1\r\n".repeat(MAX_HEAD_BYTES / 8 + 1)
        );
        assert!(matches!(
            read_reply(trailers.as_bytes()).await,
            Err(ConnError::HeadTooLarge)
        ));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
        let mut connection = Connection::new(Pieces::new(vec![reply.to_vec()]));
        let head = connection.read_head().await.expect("head");
        let mut body = BytesMut::new();
        let result = connection.read_body(&head, &mut body, 4, None).await;
        assert!(
            matches!(result, Err(ConnError::BodyTooLarge(4))),
            "{result:?}"
        );
        // What fits stays, for error snippets.
        assert_eq!(&body[..], b"0123");
        assert!(!connection.is_reusable());

        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
        assert!(matches!(
            read_reply_from(Pieces::new(vec![chunked.to_vec()]), 5).await,
            Err(ConnError::BodyTooLarge(5))
        ));
        let endless = b"HTTP/1.1 200 OK\r\n\r\n0123456789";
        assert!(matches!(
            read_reply_from(Pieces::new(vec![endless.to_vec()]), 9).await,
            Err(ConnError::BodyTooLarge(9))
        ));
    }

    #[tokio::test]
    async fn replies_without_a_body() {
        for status in ["204 No Content", "304 Not Modified"] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            let (_, body, reusable) = read_reply(text.as_bytes()).await.expect("reply");
            assert!(body.is_empty());
            assert!(reusable);
        }
    }

    #[tokio::test]
    async fn transfer_encoding_wins_over_content_length_without_reuse() {
        let (head, body, reusable) = read_reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
        )
        .await
        .expect("reply");
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(&body[..], b"hello");
        assert!(!reusable);
        // A transfer coding that does not end in chunked: read to the end.
        let (head, body, _) =
            read_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nabc")
                .await
                .expect("reply");
        assert_eq!(head.framing, Framing::Eof);
        assert_eq!(&body[..], b"abc");
    }

    #[tokio::test]
    async fn the_end_of_the_stream_before_or_inside_the_reply() {
        let closed = read_reply(b"").await;
        assert!(
            matches!(&closed, Err(error @ ConnError::Closed { received: false }) if error.before_reply()),
            "{closed:?}"
        );
        let closed = read_reply(b"HTTP/1.1 200 OK\r\nContent-").await;
        assert!(
            matches!(&closed, Err(error @ ConnError::Closed { received: true }) if !error.before_reply()),
            "{closed:?}"
        );
        let closed = read_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").await;
        assert!(
            matches!(closed, Err(ConnError::Closed { received: true })),
            "{closed:?}"
        );
        let closed =
            read_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n").await;
        assert!(
            matches!(closed, Err(ConnError::Closed { received: true })),
            "{closed:?}"
        );
    }

    #[tokio::test]
    async fn requests_are_one_head_and_the_body() {
        let mut connection = Connection::new(Pieces::new(vec![]));
        connection
            .send(b"POST /fn/x HTTP/1.1\r\nHost: h:1\r\n", b"\x01\x02\x03")
            .await
            .expect("sent");
        assert_eq!(
            connection.stream.written,
            b"POST /fn/x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\n\x01\x02\x03"
        );
        let mut head = Vec::new();
        push_decimal(&mut head, 0);
        push_decimal(&mut head, 1_234_567_890);
        assert_eq!(head, b"01234567890");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let (client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .expect("write");
        let mut connection = Connection::new(client);
        let head = connection.read_head().await.expect("head");
        let mut body = BytesMut::new();
        let limit = Duration::from_millis(20);
        let result = connection
            .read_body(&head, &mut body, 100, Some(limit))
            .await;
        assert!(
            matches!(result, Err(ConnError::Stalled(l)) if l == limit),
            "{result:?}"
        );
        drop(server);
    }

    /// A TCP server that answers each request on a connection (a head without a body) with an
    /// empty `200`, then does what `after` says: keep the connection (`"keep"`), close it
    /// without saying so (`"close"`), or send unexpected bytes (`"garbage"`). Returns its
    /// address and the number of connections it accepted (for tests of this module and of
    /// the pool).
    pub(crate) async fn tcp_server(
        after: &'static str,
    ) -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::AsyncReadExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(read) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        seen.extend_from_slice(&chunk[..read]);
                        if seen.windows(4).any(|window| window == b"\r\n\r\n") {
                            seen.clear();
                            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                            if stream.write_all(reply).await.is_err() {
                                return;
                            }
                            match after {
                                "close" => return,
                                "garbage" => {
                                    tokio::time::sleep(Duration::from_millis(30)).await;
                                    let _ = stream.write_all(b"surprise").await;
                                }
                                _ => {}
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// One empty POST on `connection`, its reply read whole (for tests of this module and of
    /// the pool).
    pub(crate) async fn exchange(connection: &mut Connection) {
        connection
            .send(b"POST / HTTP/1.1\r\nHost: test\r\n", b"")
            .await
            .expect("sent");
        let head = connection.read_head().await.expect("head");
        let mut body = BytesMut::new();
        connection
            .read_body(&head, &mut body, 100, None)
            .await
            .expect("body");
    }

    async fn connect_and_call(addr: std::net::SocketAddr) -> Connection {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut connection = Connection::new(Stream::Plain(tcp));
        assert!(!connection.is_idle_usable(), "nothing was read yet");
        exchange(&mut connection).await;
        assert!(connection.is_reusable());
        connection
    }

    #[tokio::test]
    async fn idle_connections_the_server_keeps_stay_usable() {
        let mut connection = connect_and_call(tcp_server("keep").await.0).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(connection.is_idle_usable());
        assert!(connection.is_idle_usable(), "the check consumes nothing");
    }

    #[tokio::test]
    async fn idle_connections_the_server_closed_are_detected() {
        let mut connection = connect_and_call(tcp_server("close").await.0).await;
        wait_for(|| !connection.is_idle_usable()).await;
    }

    #[tokio::test]
    async fn idle_connections_with_unexpected_bytes_are_detected() {
        let mut connection = connect_and_call(tcp_server("garbage").await.0).await;
        wait_for(|| !connection.is_idle_usable()).await;
    }

    /// Parses `bytes` split at `cuts`; a comparable outcome.
    fn outcome(bytes: &[u8], cuts: &[usize], limit: usize) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = runtime.block_on(read_reply_from(Pieces::split(bytes, cuts), limit));
        match result {
            Ok((head, body, reusable)) => format!("ok {head:?} {body:?} {reusable}"),
            Err(error) => format!("error {error}"),
        }
    }

    /// A reply: optional interim reply, a head and a body framed one of three ways.
    fn any_reply() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            0..3u8,
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..5),
            any::<bool>(),
        )
            .prop_map(|(interim, framing, chunks, trailers)| {
                let mut reply = Vec::new();
                if interim {
                    reply.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                reply.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n",
                );
                let body = chunks.concat();
                match framing {
                    0 => {
                        reply.extend_from_slice(
                            format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                        );
                        reply.extend_from_slice(&body);
                    }
                    1 => {
                        reply.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                        for chunk in &chunks {
                            reply
                                .extend_from_slice(format!("{:x};e=1\r\n", chunk.len()).as_bytes());
                            reply.extend_from_slice(chunk);
                            reply.extend_from_slice(b"\r\n");
                        }
                        reply.extend_from_slice(b"0\r\n");
                        if trailers {
                            reply.extend_from_slice(b"X-Trailer: yes\r\n");
                        }
                        reply.extend_from_slice(b"\r\n");
                    }
                    _ => {
                        reply.extend_from_slice(b"\r\n");
                        reply.extend_from_slice(&body);
                    }
                }
                reply
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn replies_split_anywhere_parse_alike(
            reply in any_reply(),
            cuts in proptest::collection::vec(0..400usize, 0..12),
            limit in prop_oneof![Just(1usize << 20), 0..100usize],
        ) {
            let whole = outcome(&reply, &[], limit);
            prop_assert_eq!(outcome(&reply, &cuts, limit), whole);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = outcome(&bytes, &[7, 40], 1000);
        }
    }
}
