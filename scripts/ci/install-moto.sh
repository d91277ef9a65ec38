#!/usr/bin/env bash
# Installs moto (an AWS API server: ECR, STS, S3, …) for the @launch/cloud-aws tests.
# Moto is not in bookworm: its trixie package python3-moto is fetched with `apt-get download`
# through a private sources list (the system's sources are not touched) and unpacked with `dpkg -x`
# into $MOTO_PREFIX (default /opt/launch-moto); its dependencies come from bookworm via apt-get.
# Run it as `PYTHONPATH=$MOTO_PREFIX/usr/lib/python3/dist-packages /usr/bin/python3 -m moto.server`.
# Idempotent: does nothing when moto already imports from the prefix. Needs root (or sudo).
set -euo pipefail

prefix="${MOTO_PREFIX:-/opt/launch-moto}"
site="$prefix/usr/lib/python3/dist-packages"

moto_imports() {
  PYTHONPATH="$site" /usr/bin/python3 -c 'import moto.server, moto.ecr, moto.sts' >/dev/null 2>&1
}

deps=(python3-boto3 python3-botocore python3-flask python3-flask-cors python3-werkzeug python3-xmltodict
  python3-responses python3-jinja2 python3-cryptography python3-dateutil python3-requests python3-yaml)

if moto_imports; then
  echo "install-moto: moto already installed in $prefix" >&2
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "install-moto: need root" >&2
    exit 1
  fi
fi

missing=()
for pkg in "${deps[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$pkg"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-moto: installing ${missing[*]} from bookworm" >&2
  lock=()
  if command -v flock >/dev/null 2>&1; then lock=(flock /tmp/launch-apt.lock); fi
  "${sudo_cmd[@]}" "${lock[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" "${lock[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A private apt state that knows trixie only, so that `apt-get download` fetches trixie's moto
# without adding trixie to the system's sources.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d" "$work/etc/sources.list.d"
cat >"$work/etc/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
apt_opts=(-o "Dir::Etc::sourcelist=$work/etc/sources.list" -o "Dir::Etc::sourceparts=$work/etc/sources.list.d"
  -o "Dir::Etc::preferencesparts=$work/etc/preferences.d" -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" download python3-moto)
"${sudo_cmd[@]}" mkdir -p "$prefix"
"${sudo_cmd[@]}" dpkg -x "$work"/python3-moto_*.deb "$prefix"

if ! moto_imports; then
  echo "install-moto: moto was unpacked into $prefix but does not import:" >&2
  PYTHONPATH="$site" /usr/bin/python3 -c 'import moto.server, moto.ecr, moto.sts' >&2 || true
  exit 1
fi
echo "install-moto: moto $(PYTHONPATH="$site" /usr/bin/python3 -c 'import moto; print(moto.__version__)') installed in $prefix" >&2
