//! HTTP publishing of images and ISO overlays to BMCs: tokens, HEAD/Range/ETag.
