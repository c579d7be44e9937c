// What the extension's C++ needs to know of Citus once distribute_job_tables() has spread the
// per-job tables over worker nodes (docs/design.md "On Citus"): whether the tables are
// distributed, whether this node is the coordinator, whether a relation a trigger fires on is a
// shard, and which co-located shard of another table holds the same jobs. Nothing here loads or
// links Citus: it reads Citus's catalog tables through SPI when the citus extension exists in
// the database, and answers "not distributed" otherwise.
#pragma once

#include "pg.hpp"

namespace s3scan {

// Whether nsp.jobs is a Citus distributed table (distribute_job_tables() has run). Remembered
// until a relcache invalidation of jobs (Citus sends one when it distributes a table).
bool job_tables_distributed(Oid nsp);

// Whether this node is the Citus coordinator of a distributed database (true without Citus).
bool citus_coordinator();

// Whether the citus extension is installed in this database.
bool citus_in_database();

// Whether rel is a Citus shard of the extension's table named table: its name is the table's,
// then "_" and the shard id, in the table's schema. Sets *shardid.
bool shard_of(Relation rel, const char *table, int64 *shardid);

// The shard of nsp.table that is co-located with shard shardid (the same range of job_id
// hashes), when it is on this node; InvalidOid otherwise. Remembered until a relcache
// invalidation (a shard created, moved or dropped sends one).
Oid colocated_shard(int64 shardid, Oid nsp, const char *table);

// Whether this backend applies logical replication (a subscription's apply or table sync worker):
// Citus moves and splits shards that way, and the row-level counter triggers of the target shard
// must not count again what the source's deltas already carry.
bool applying_logical_replication();

}  // namespace s3scan
