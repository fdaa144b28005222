//! A scrape's body sent while it is encoded: at 10,000 VMs the whole text is ≈ 17 MB, and a body
//! built whole held all of it at once (benches/README.md). The encoder runs on a blocking thread
//! (off the HTTP worker) and hands over chunks, at most a few ahead of the socket.

use std::fmt;
use std::io;

use actix_web::web::Bytes;
use futures_util::stream::Stream;
use tokio::sync::mpsc;

use super::http::HttpMetrics;
use super::scrape::{Format, Scrape};

/// What the encoder gathers before handing a chunk over.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks encoded ahead of the socket.
const CHUNKS_AHEAD: usize = 2;

type Chunk = Result<Bytes, io::Error>;

/// The exposition of `scrape`, chunk by chunk. An encoding that fails ends the body with an
/// error, so that the connection is cut: a scraper never takes half a body for a whole one.
pub fn scrape_body(scrape: Scrape, format: Format, http: HttpMetrics) -> impl Stream<Item = Chunk> {
    let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
    actix_rt::task::spawn_blocking(move || {
        let mut chunks = Chunks {
            buffer: String::with_capacity(CHUNK_BYTES),
            sender: &sender,
        };
        let written = scrape.write(&mut chunks, format, &http);
        if written.and_then(|()| chunks.hand_over()).is_err() {
            // Nobody reads it when the scraper went away; the error is for the other cases.
            let error = io::Error::other("the metrics could not be encoded");
            let _ = sender.blocking_send(Err(error));
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((chunk, receiver))
    })
}

struct Chunks<'a> {
    buffer: String,
    sender: &'a mpsc::Sender<Chunk>,
}

impl Chunks<'_> {
    /// Sends what is gathered, waiting while `CHUNKS_AHEAD` chunks are unsent; fails once the
    /// body is no longer read.
    fn hand_over(&mut self) -> fmt::Result {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, String::with_capacity(CHUNK_BYTES));
        let sent = self.sender.blocking_send(Ok(Bytes::from(chunk)));
        sent.map_err(|_| fmt::Error)
    }
}

impl fmt::Write for Chunks<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.buffer.push_str(text);
        if self.buffer.len() >= CHUNK_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }
}
