//! Streaming disk writer: source → decompress → decode → verify → sparse sink.
