//! The initramfs archive: the "newc" cpio format the kernel unpacks (Linux
//! Documentation/driver-api/early-userspace/buffer-format.rst). Pure: entries in, bytes out.
//! Every header field is 8 hex digits; name and data are padded to 4 bytes; the archive ends
//! with the `TRAILER!!!` entry. Dates are 0 and inode numbers sequential, so the same entries
//! give the same bytes.

/// One archive member. Paths are relative ("bin/busybox"); parents must come first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// A character device node (the kernel needs `dev/console` before devtmpfs is mounted).
    CharDev {
        path: String,
        major: u32,
        minor: u32,
    },
}

const MAGIC: &str = "070701";
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(4) * 4, 0);
}

/// A member's header fields that vary by kind.
struct Header<'a> {
    ino: u32,
    path: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
}

fn member(out: &mut Vec<u8>, h: Header, data: &[u8]) {
    let Header {
        ino,
        path,
        mode,
        nlink,
        rdev,
    } = h;
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // dev major
        0, // dev minor
        rdev.0,
        rdev.1,
        path.len() as u32 + 1,
        0, // check (unused by newc)
    ];
    out.extend(MAGIC.as_bytes());
    for f in fields {
        out.extend(format!("{f:08X}").as_bytes());
    }
    out.extend(path.as_bytes());
    out.push(0);
    pad4(out);
    out.extend(data);
    pad4(out);
}

/// Encodes `entries` as a newc archive, terminated.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        let h = |path, mode, nlink| Header {
            ino,
            path,
            mode,
            nlink,
            rdev: (0, 0),
        };
        match e {
            Entry::Dir { path } => member(&mut out, h(path, S_IFDIR | 0o755, 2), &[]),
            Entry::File { path, mode, data } => {
                member(&mut out, h(path, S_IFREG | (mode & 0o7777), 1), data)
            }
            Entry::Symlink { path, target } => {
                member(&mut out, h(path, S_IFLNK | 0o777, 1), target.as_bytes())
            }
            Entry::CharDev { path, major, minor } => member(
                &mut out,
                Header {
                    rdev: (*major, *minor),
                    ..h(path, S_IFCHR | 0o600, 1)
                },
                &[],
            ),
        }
    }
    let trailer = Header {
        ino: 0,
        path: "TRAILER!!!",
        mode: 0,
        nlink: 1,
        rdev: (0, 0),
    };
    member(&mut out, trailer, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(h: &[u8], i: usize) -> u32 {
        let s = std::str::from_utf8(&h[6 + 8 * i..6 + 8 * (i + 1)]).unwrap();
        u32::from_str_radix(s, 16).unwrap()
    }

    #[test]
    fn headers_names_and_data_are_aligned() {
        let out = encode(&[
            Entry::Dir { path: "bin".into() },
            Entry::File {
                path: "init".into(),
                mode: 0o755,
                data: b"#!/bin/sh\n".to_vec(),
            },
            Entry::Symlink {
                path: "bin/sh".into(),
                target: "busybox".into(),
            },
            Entry::CharDev {
                path: "dev/console".into(),
                major: 5,
                minor: 1,
            },
        ]);
        assert_eq!(out.len() % 4, 0);
        // First member: a directory named "bin".
        assert_eq!(&out[..6], b"070701");
        assert_eq!(field(&out, 1), 0o040_755);
        assert_eq!(field(&out, 11), 4, "name size counts the NUL");
        assert_eq!(&out[110..114], b"bin\0");
        // Second member starts at 110 + 4 (name) rounded to 4 = 116.
        let second = &out[116..];
        assert_eq!(&second[..6], b"070701");
        assert_eq!(field(second, 1), 0o100_755);
        assert_eq!(field(second, 6), 10);
        let name_end = (110 + 5usize).div_ceil(4) * 4;
        assert_eq!(&second[110..115], b"init\0");
        assert_eq!(&second[name_end..name_end + 10], b"#!/bin/sh\n");
        assert!(out.windows(11).any(|w| w == b"TRAILER!!!\0"));
        let link_at = out.windows(7).position(|w| w == b"bin/sh\0").unwrap() - 110;
        assert_eq!(field(&out[link_at..], 1), 0o120_777);
        let dev_at = out.windows(12).position(|w| w == b"dev/console\0").unwrap() - 110;
        let dev = &out[dev_at..];
        assert_eq!(
            (field(dev, 1), field(dev, 9), field(dev, 10)),
            (0o020_600, 5, 1)
        );
    }

    #[test]
    fn same_entries_same_bytes() {
        let e = [Entry::File {
            path: "a".into(),
            mode: 0o644,
            data: vec![1, 2, 3],
        }];
        assert_eq!(encode(&e), encode(&e));
    }
}
