#!/bin/sh
# The compose file's one-shot `setup` service (also run by hand: `docker compose run --rm setup`). It makes
# what the compose `secrets:` point at, in the host folder SECRETS_DIR, and exits 0; running it again changes
# nothing. Compose reads secret files when it creates a container, so this must have run once before the
# first `docker compose up` (the README's first step).
#   setup.sh SECRETS_DIR [SANDBOX_SECRETS_DIR]
# - SECRETS_DIR/kek: the key-encryption key (32 random bytes, hex), mode 0600, made only if absent: a new
#   key would make every stored factor and parked approval unreadable.
# - SECRETS_DIR/dashboard-password: the dashboard's login password, made only if absent.
# - SECRETS_DIR/<tenant>-client-secret: each tenant's OAuth2 client secret. With the sandbox provider they
#   are copied from the sandbox's data folder (it makes its own); with a real provider the operator puts
#   them there and no SANDBOX_SECRETS_DIR is given.
set -eu

secrets_dir=${1:?usage: setup.sh SECRETS_DIR [SANDBOX_SECRETS_DIR]}
sandbox_secrets=${2:-}
umask 077
mkdir -p "$secrets_dir"

kek="$secrets_dir/kek"
if [ -s "$kek" ]; then
  echo "setup: $kek exists, kept"
else
  # No openssl in the slim runtime image; node's CSPRNG is what the worker itself would use.
  tmp="$kek.tmp.$$"
  node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex') + '\n')" >"$tmp"
  mv "$tmp" "$kek"
  echo "setup: made $kek"
fi
# The worker refuses a key file its group or others may read (as ssh does a private key).
chmod 600 "$kek"

# The dashboard's login password, made once; read it from this file to sign in.
password="$secrets_dir/dashboard-password"
if [ -s "$password" ]; then
  echo "setup: $password exists, kept"
else
  tmp="$password.tmp.$$"
  node -e "process.stdout.write(require('node:crypto').randomBytes(18).toString('base64url') + '\n')" >"$tmp"
  mv "$tmp" "$password"
  echo "setup: made $password (the dashboard's password for SEALER_DASHBOARD_USER)"
fi
chmod 600 "$password"

if [ -n "$sandbox_secrets" ]; then
  for tenant_dir in "$sandbox_secrets"/*/; do
    [ -f "$tenant_dir/client-secret" ] || continue
    tenant=$(basename "$tenant_dir")
    target="$secrets_dir/$tenant-client-secret"
    if cmp -s "$tenant_dir/client-secret" "$target"; then
      echo "setup: $target up to date"
    else
      # The sandbox re-makes its secrets when its data folder is new, so a stale copy is replaced.
      cp "$tenant_dir/client-secret" "$target.tmp.$$"
      mv "$target.tmp.$$" "$target"
      echo "setup: copied $tenant's client secret to $target"
    fi
    chmod 600 "$target"
  done
fi
