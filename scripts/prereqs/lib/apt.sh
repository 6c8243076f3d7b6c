# Sourced by the scripts in scripts/prereqs/: installs Debian packages when this is root on a machine
# with apt-get, otherwise names what is missing and exits 1 (scripts/test-prereqs.mjs then prints the
# one command that installs everything).

# need_packages WHAT PACKAGE...: returns at once when every package is installed.
need_packages() {
  local what="$1"
  shift
  local missing=()
  local package
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${missing[*]} for $what"
    # The package lists are refreshed at most once per run of scripts/test-prereqs.mjs.
    if [ -z "${VSWIN_PREREQS_APT_UPDATED:-}" ] || [ ! -e "$VSWIN_PREREQS_APT_UPDATED" ]; then
      apt-get -o DPkg::Lock::Timeout=600 update
      [ -n "${VSWIN_PREREQS_APT_UPDATED:-}" ] && touch "$VSWIN_PREREQS_APT_UPDATED"
    fi
    # Another apt-get (unattended upgrades, a second terminal) holding the lock is waited for.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
    return
  fi
  echo "missing for $what: ${missing[*]}" >&2
  exit 1
}

# need_command COMMAND WHAT PACKAGE...: like need_packages, but only when COMMAND is not on PATH at all
# (a python3 from elsewhere is as good as Debian's).
need_command() {
  local command="$1"
  shift
  command -v "$command" >/dev/null && return 0
  need_packages "$@"
}
