//! The in-ramdisk agent (`ironcast agent`): receives a write command and runs the disk writer.
