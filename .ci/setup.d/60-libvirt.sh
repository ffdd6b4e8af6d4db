# Starts libvirt (no systemd here) with the settings sushy-tools' libvirt driver needs.
scripts/libvirt-setup
