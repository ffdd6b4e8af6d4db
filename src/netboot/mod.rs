//! PXE local-boot and deploy configs (pxelinux, GRUB, iPXE) per MAC.
