#!/usr/bin/env bash
# Records a real ledger with known lost writes: async GTID replication (MySQL 9.7),
# the replica's IO thread stopped under write load, then the primary killed, the replica
# promoted (once it has applied what it had received) and the app's writer endpoint (a
# network alias) moved to it. The acknowledged writes the replica never received are lost.
# Usage: bash record-async-failover.sh OUT_DIR  (APP_IMAGE: an app image with the DB endpoints,
# e.g. the one tests/integration/test_db_app.py builds). It made mysql-async-failover/.
set -euo pipefail
LAB=dbapp-rec; L="io.labctl.lab=$LAB"; OUT=${1:?out dir}; APP=${APP_IMAGE:-labctl/app:test-db-app}
W=$(cd "$(dirname "$0")/../../.." && pwd)
cleanup() { docker rm -f $(docker ps -aq --filter label=$L) >/dev/null 2>&1 || true; docker network rm $LAB $LAB-switch >/dev/null 2>&1 || true; }
cleanup; trap cleanup EXIT
docker network create --label $L $LAB >/dev/null
# The new primary joins this second network as "writer": connecting it there disturbs none
# of its open connections (a disconnect/connect on the lab network would).
docker network create --label $L $LAB-switch >/dev/null
for n in 1 2; do
  alias=$([ $n = 1 ] && echo "--network-alias writer" || true)
  docker run -d --name $LAB-db$n --hostname mysql-$n --label $L --network $LAB $alias \
    -e MYSQL_ROOT_PASSWORD=rootpw -e MYSQL_DATABASE=labctl -e MYSQL_USER=app -e MYSQL_PASSWORD=apppw \
    labctl/mysql:local mysqld --server-id=$n --gtid-mode=ON --enforce-gtid-consistency=ON --log-bin=binlog >/dev/null
done
sql() { docker exec -e MYSQL_PWD=rootpw $LAB-db$1 mysql -h127.0.0.1 -uroot -N -B labctl -e "$2"; }
for i in $(seq 120); do sql 1 'SELECT 1' >/dev/null 2>&1 && sql 2 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
sql 1 "CREATE USER repl@'%' IDENTIFIED BY 'replpw'; GRANT REPLICATION SLAVE ON *.* TO repl@'%';
CREATE TABLE writes (id VARCHAR(64) PRIMARY KEY, served_by VARCHAR(64), created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
sql 2 "CHANGE REPLICATION SOURCE TO SOURCE_HOST='$LAB-db1', SOURCE_USER='repl', SOURCE_PASSWORD='replpw', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1; START REPLICA"
for i in $(seq 60); do [ "$(sql 2 "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='labctl' AND table_name='writes'")" = 1 ] && break; sleep 0.5; done
docker run -d --name $LAB-app --label $L --network $LAB -p 127.0.0.1::8000 -e DB_WRITER=writer:3306 \
  -e DB_READERS=$LAB-db2:3306 -e DB_USER=app -e DB_PASSWORD=apppw $APP >/dev/null
docker network connect $LAB-switch $LAB-app
PORT=$(docker port $LAB-app 8000/tcp | head -1 | sed 's/.*://')
for i in $(seq 30); do curl -sf 127.0.0.1:$PORT/health >/dev/null && break; sleep 0.5; done
RUN=$OUT/20261125-061500-async-failover; mkdir -p $RUN
echo 'from labctl.loadgen.db_user import DbWriteUser  # noqa: F401' > $RUN/locustfile.py
(cd $RUN && LABCTL_SAMPLES_DIR=$RUN $W/.venv/bin/python -m locust -f $W/labctl/loadgen/plugin.py,$RUN/locustfile.py \
   --host http://127.0.0.1:$PORT --headless --only-summary -u 4 -r 4 -t 10s --stop-timeout 2 --exit-code-on-error 0 \
   --loglevel WARNING > $RUN/locust.log 2>&1) &
sleep 4
sql 2 "STOP REPLICA IO_THREAD"; stopped=$(date +%s.%N)
sleep 2
kill_sent=$(date +%s.%N); docker kill $LAB-db1 >/dev/null; killed=$(date +%s.%N)
# Promote properly: apply everything already received before dropping the relay log.
received=$(sql 2 "SELECT RECEIVED_TRANSACTION_SET FROM performance_schema.replication_connection_status")
sql 2 "SELECT WAIT_FOR_EXECUTED_GTID_SET('$received', 60)" >/dev/null
sql 2 "STOP REPLICA; RESET REPLICA ALL"
docker network connect --alias writer $LAB-switch $LAB-db2; switched=$(date +%s.%N)
wait
sql 2 "SELECT id FROM writes" > $OUT/present.txt
printf '{"replica_io_stopped_at": %s, "primary_kill_sent_at": %s, "primary_killed_at": %s, "writer_switched_at": %s}\n' \
  "$stopped" "$kill_sent" "$killed" "$switched" > $OUT/events.json
mv $RUN/ledger-*.jsonl $OUT/; rm -rf $RUN
wc -l $OUT/*
