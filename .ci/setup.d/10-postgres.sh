# Starts the Debian PostgreSQL 15 cluster (installed, not running) and creates the role and
# database the store suite uses; each test then creates its own database from it.
pg_ctlcluster 15 main status >/dev/null 2>&1 || pg_ctlcluster 15 main start
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='ironcast'\"" | grep 1 >/dev/null ||
  su postgres -c "psql -qc \"CREATE ROLE ironcast LOGIN CREATEDB PASSWORD 'ironcast'\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='ironcast_test'\"" | grep 1 >/dev/null ||
  su postgres -c "createdb -O ironcast ironcast_test"
export IRONCAST_TEST_POSTGRES_URL=postgres://ironcast:ironcast@127.0.0.1:5432/ironcast_test
