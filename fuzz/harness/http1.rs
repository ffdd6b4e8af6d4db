//! The image server's HTTP/1 request head parser on arbitrary bytes.

use ironcast::imageserver::http1::parse_head;

pub fn run(data: &[u8]) {
    if let Ok(Some((head, used))) = parse_head(data) {
        assert!(
            used <= data.len(),
            "consumed {used} of {} bytes",
            data.len()
        );
        let _ = head.path();
        let _ = head.keep_alive();
    }
}
