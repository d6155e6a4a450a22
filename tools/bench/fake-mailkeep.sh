#!/bin/sh
# Stand-in for target/release/mailkeep that runs Dovecot behind Mailkeep's command line,
# to test the benchmark's Mailkeep code path before Mailkeep exists:
#   cargo run --release -p mailkeep-bench -- delivery --quick --mailkeep-bin tools/bench/fake-mailkeep.sh
# Supports `user add --config F NAME` (password on stdin) and `serve --config F`.
set -e
cmd=$1
[ "$cmd" = user ] && shift
shift
[ "$1" = --config ] || { echo "usage: $0 serve|user add --config FILE [NAME]" >&2; exit 2; }
conf=$2
data=$(sed -n 's/^data_dir = "\(.*\)"/\1/p' "$conf")
port=$(sed -n 's/^listen = \["127.0.0.1:\([0-9]*\)"\]/\1/p' "$conf" | head -n1)
mkdir -p "$data/run" "$data/state" "$data/mail"
chown 8:8 "$data/mail"
case $cmd in
user)
    read -r pw
    echo "$3:{PLAIN}$pw::::::" >> "$data/users" ;;
serve)
    cat > "$data/dovecot.conf" <<EOC
base_dir = $data/run
state_dir = $data/state
instance_name = fake-mailkeep-$port
protocols = imap
listen = 127.0.0.1
log_path = $data/dovecot.log
ssl = no
disable_plaintext_auth = no
first_valid_uid = 8
mail_location = maildir:$data/mail/%u/Maildir
protocol imap {
  mail_max_userip_connections = 100000
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $data/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$data/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
}
EOC
    exec dovecot -F -c "$data/dovecot.conf" ;;
esac
