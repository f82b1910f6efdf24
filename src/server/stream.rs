//! Live output of the execute routes (services, inline code, sessions) as Server-Sent Events
//! or NDJSON: one `chunk` event per piece of stdout/stderr as the program writes it, then one
//! `report` (or `error`).

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::data::report::Report;
use crate::engine::{OutputSink, Stream};

pub const SSE: &str = "text/event-stream";
pub const NDJSON: &str = "application/x-ndjson";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sse,
    Ndjson,
}

impl Format {
    /// The streaming format the `Accept` header asks for, if any (first match wins).
    pub fn from_accept(headers: &HeaderMap) -> Option<Format> {
        let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
        accept.split(',').find_map(|part| match part.split(';').next().unwrap_or("").trim() {
            SSE => Some(Format::Sse),
            NDJSON => Some(Format::Ndjson),
            _ => None,
        })
    }
}

/// A piece of the program's output, as the program wrote it.
#[derive(Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Chunk {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The bytes, when they are UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The bytes, base64-encoded, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

pub enum Event {
    Chunk(Chunk),
    Report(Box<Report>),
    Error(ApiError),
}

impl Event {
    fn encode(&self, format: Format) -> Bytes {
        // Serialised straight from the types (not via a JSON map), so the report's fields keep
        // the order of the JSON response. Cannot fail: plain structs with string keys.
        let (name, data) = match self {
            Event::Chunk(c) => ("chunk", serde_json::to_string(c)),
            Event::Report(r) => ("report", serde_json::to_string(r)),
            Event::Error(e) => ("error", serde_json::to_string(&e.body())),
        };
        let data = data.unwrap_or_else(|_| "{}".to_string());
        Bytes::from(match format {
            // serde_json escapes newlines, so the data is always one `data:` line.
            Format::Sse => format!("event: {name}\ndata: {data}\n\n"),
            // The payload's fields, after an `event` field.
            Format::Ndjson => match data.strip_prefix('{').filter(|rest| *rest != "}") {
                Some(rest) => format!("{{\"event\":\"{name}\",{rest}\n"),
                None => format!("{{\"event\":\"{name}\"}}\n"),
            },
        })
    }

    fn is_last(&self) -> bool {
        !matches!(self, Event::Chunk(_))
    }
}

/// Forwards the program's output to the response. Chunks are sent as `text` when they are
/// UTF-8 and as `base64` when they are not, so the bytes arrive unchanged either way; a
/// character split across two reads is held back until it is whole.
///
/// The queue is unbounded in entries but not in bytes: the supervisor forwards only the part
/// of each stream below the output cap, so a slow client makes the server hold at most the
/// capped output once more (as encoded events), and never slows the program down.
pub struct StreamSink {
    tx: mpsc::UnboundedSender<Event>,
    /// Incomplete UTF-8 sequences at the end of the last stdout and stderr chunk.
    pending: Mutex<[Vec<u8>; 2]>,
}

impl StreamSink {
    pub fn new(tx: mpsc::UnboundedSender<Event>) -> StreamSink {
        StreamSink { tx, pending: Mutex::new([Vec::new(), Vec::new()]) }
    }

    /// Sends what is still held back (a stream that ended mid-character), then `last`.
    pub fn finish(&self, last: Event) {
        let held = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (stream, bytes) in [Stream::Stdout, Stream::Stderr].into_iter().zip(held) {
            if !bytes.is_empty() {
                self.send(stream, &bytes);
            }
        }
        let _ = self.tx.send(last);
    }

    fn send(&self, stream: Stream, bytes: &[u8]) {
        let name = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        let (text, base64) = match std::str::from_utf8(bytes) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(bytes))),
        };
        let chunk = Chunk { stream: name.to_string(), text, base64 };
        // The client may be gone; the run is being cancelled then.
        let _ = self.tx.send(Event::Chunk(chunk));
    }
}

impl OutputSink for StreamSink {
    fn chunk(&self, stream: Stream, bytes: &[u8]) {
        let i = usize::from(stream == Stream::Stderr);
        let data = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let mut data = std::mem::take(&mut pending[i]);
            data.extend_from_slice(bytes);
            // Hold back an incomplete character at the end (at most 3 bytes); invalid bytes
            // elsewhere make the chunk base64.
            if let Err(e) = std::str::from_utf8(&data)
                && e.error_len().is_none()
            {
                pending[i] = data.split_off(e.valid_up_to());
            }
            data
        };
        if !data.is_empty() {
            self.send(stream, &data);
        }
    }
}

/// Cancels the run when the response is dropped before its last event: the client hung up.
struct CancelOnDrop(Option<CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

struct EventStream {
    rx: mpsc::UnboundedReceiver<Event>,
    format: Format,
    guard: CancelOnDrop,
}

impl futures_core::Stream for EventStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.guard.0.is_none() {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                if event.is_last() {
                    self.guard.0 = None;
                }
                Poll::Ready(Some(Ok(event.encode(self.format))))
            }
            // The run ended without a last event (it panicked): end the response.
            Poll::Ready(None) => {
                self.guard.0 = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The 200 response carrying the events of `rx`; dropping it early cancels `cancel`.
pub fn response(rx: mpsc::UnboundedReceiver<Event>, format: Format, cancel: CancellationToken) -> Response {
    let stream = EventStream { rx, format, guard: CancelOnDrop(Some(cancel)) };
    let content_type = match format {
        Format::Sse => SSE,
        Format::Ndjson => NDJSON,
    };
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise buffer the whole stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(rx: &mut mpsc::UnboundedReceiver<Event>) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(Event::Chunk(c)) = rx.try_recv() {
            out.push(serde_json::to_value(c).unwrap());
        }
        out
    }

    #[test]
    fn split_characters_are_held_back_and_invalid_bytes_go_base64() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = StreamSink::new(tx);
        let e = "é".as_bytes();
        sink.chunk(Stream::Stdout, &[b'a', e[0]]);
        sink.chunk(Stream::Stderr, b"err");
        sink.chunk(Stream::Stdout, &[e[1], b'b']);
        sink.chunk(Stream::Stdout, &[0xff, b'c']);
        sink.chunk(Stream::Stdout, &[e[0]]);
        assert_eq!(
            chunks(&mut rx),
            vec![
                serde_json::json!({"stream": "stdout", "text": "a"}),
                serde_json::json!({"stream": "stderr", "text": "err"}),
                serde_json::json!({"stream": "stdout", "text": "éb"}),
                serde_json::json!({"stream": "stdout", "base64": "/2M="}),
            ]
        );
        sink.finish(Event::Error(ApiError::not_found("x")));
        assert_eq!(chunks(&mut rx), vec![serde_json::json!({"stream": "stdout", "base64": "ww=="})]);
    }

    #[test]
    fn ndjson_events_are_one_flat_line_and_sse_one_data_line() {
        let chunk = Event::Chunk(Chunk { stream: "stdout".into(), text: Some("a\nb".into()), base64: None });
        assert_eq!(
            &chunk.encode(Format::Ndjson)[..],
            b"{\"event\":\"chunk\",\"stream\":\"stdout\",\"text\":\"a\\nb\"}\n"
        );
        assert_eq!(
            &chunk.encode(Format::Sse)[..],
            b"event: chunk\ndata: {\"stream\":\"stdout\",\"text\":\"a\\nb\"}\n\n"
        );
    }

    #[test]
    fn accept_picks_the_first_streaming_type() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::from_accept(&h), None);
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json, application/x-ndjson;q=0.9"));
        assert_eq!(Format::from_accept(&h), Some(Format::Ndjson));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        assert_eq!(Format::from_accept(&h), Some(Format::Sse));
    }
}
