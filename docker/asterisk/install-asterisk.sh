#!/bin/sh
# Install Debian's asterisk package into the Debian sid system this runs in.
# One recipe for both places a real Asterisk comes from:
#   - docker/asterisk/Dockerfile (FROM debian:sid)
#   - scripts/asterisk-root.sh (a debootstrap root filesystem for the e2e tests)
# The package mirror may serve a frozen snapshot of sid whose Release file counts as expired,
# hence Check-Valid-Until=false.
set -eu
APT_OPTS="-o Acquire::Check-Valid-Until=false -o Acquire::Retries=3"
export DEBIAN_FRONTEND=noninteractive
apt-get $APT_OPTS update
apt-get $APT_OPTS install -y --no-install-recommends asterisk asterisk-core-sounds-en-gsm
apt-get clean
rm -rf /var/lib/apt/lists/*
asterisk -V
