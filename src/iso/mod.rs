//! ISO 9660 + Joliet + Rock Ridge + El Torito reader, boot-config patcher, remaster as a patch set (ECMA-119, El Torito 1.0, IEEE P1282).
