# distribute_job_tables() on a coordinator and two workers:
#  - its refusals: no Citus in the database, no worker node yet, called on a worker node, a bad
#    shard count, called again;
#  - the rows already there stay, and every job's counts stay exact (the shards' triggers recount
#    them as Citus copies them in);
#  - the scanner's statements (with findings' documented key) run on the coordinator; a job's
#    read and write each run as one task on one shard;
#  - job_status(id) and job_status(id, true) answer as on one server: the caller's own
#    uncommitted writes across shards, rollbacks, savepoints, a job's delete, TRUNCATE;
#  - each worker node folds the deltas of its shards, the coordinator refreshes job_progress.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use lib "$FindBin::RealBin/../t";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCitus;

my ($coord, $w1, $w2) = new_citus_cluster('dist', add_workers => 0);
$coord->safe_psql('postgres', 'CREATE EXTENSION s3scan_jobs');

# --- refusals ------------------------------------------------------------------------------------

sub refusal
{
	my ($node, $db, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5})/;
	return ($state // "none (rc $rc)", $err);
}

$coord->safe_psql('postgres', 'CREATE DATABASE nocitus');
$coord->safe_psql('nocitus', 'CREATE EXTENSION s3scan_jobs');
my ($state, $err) = refusal($coord, 'nocitus', 'SELECT distribute_job_tables()');
is($state, '55000', 'without Citus in the database: 55000');
like($err, qr/Citus is not installed in this database.*HINT:.*CREATE EXTENSION citus/s, 'with the way there');

($state, $err) = refusal($coord, 'postgres', 'SELECT distribute_job_tables()');
is($state, '55000', 'before a worker node is added: 55000');
like($err, qr/no active worker node.*HINT:.*citus_add_node/s, 'with the hint to add one');

add_workers($coord, $w1, $w2);
is($w1->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.4', 'the extension of the coordinator reaches the worker nodes added');

($state, $err) = refusal($w1, 'postgres', 'SELECT distribute_job_tables()');
is($state, '55000', 'on a worker node: 55000');
like($err, qr/runs on the coordinator/, 'which says where it runs');

($state) = refusal($coord, 'postgres', 'SELECT distribute_job_tables(0)');
is($state, '22023', 'a shard count of 0: 22023');

# --- rows already there ----------------------------------------------------------------------------

$coord->safe_psql('postgres', q{
INSERT INTO jobs (job_id, bucket, prefix) SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'b', 'p/'
  FROM generate_series(1, 12) i;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
  SELECT j.job_id, 'b', 'k' || g, 'e' || g, (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4]
  FROM jobs j, generate_series(1, 50 + (right(j.job_id::text, 2)::int * 7)) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
  SELECT j.job_id, 'b', j.job_id || '/k' || g, 'e' || g, 'email', 'x', g FROM jobs j, generate_series(1, 5) g;
-- a pending delta or two: the last change before distributing is not folded yet
UPDATE job_objects SET status = 'succeeded' WHERE job_id = '00000000-0000-4000-8000-000000000001' AND status = 'queued';
});
my $before = $coord->safe_psql('postgres',
	'SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
	   FROM job_progress_from_tables ORDER BY job_id');

$coord->safe_psql('postgres', 'SELECT distribute_job_tables(8)');
# (a worker node's refresh worker refreshed its own job_progress until now)
my $w1_history = $w1->safe_psql('postgres', 'SELECT COALESCE(max(id), 0) FROM refresh_history');
is($coord->safe_psql('postgres', 'SELECT job_tables_distributed()'), 't', 'the tables are distributed');
is( $coord->safe_psql(
		'postgres', "SELECT string_agg(logicalrelid::text || ':' || colocationid, ' ' ORDER BY logicalrelid::text)
		   FROM pg_dist_partition WHERE logicalrelid::text IN ('jobs','job_objects','findings','job_counters','job_counter_deltas')"
	) =~ tr/://, 5, 'five tables');
is( $coord->safe_psql(
		'postgres', "SELECT count(DISTINCT colocationid) FROM pg_dist_partition
		   WHERE logicalrelid::text IN ('jobs','job_objects','findings','job_counters','job_counter_deltas')"),
	'1', 'co-located');
is($coord->safe_psql('postgres',
	'SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
	   FROM job_progress_live ORDER BY job_id'), $before, 'every job counts as before, in real time');
is(recount_differences($coord), '', 'and job_status(id, true) matches a recount');
is( $coord->safe_psql('postgres',
		"SELECT pg_relation_size('jobs') + pg_relation_size('job_objects') + pg_relation_size('findings')"),
	'0', 'the coordinator keeps no copy of the rows, they are in the shards');
($state) = refusal($coord, 'postgres', 'SELECT distribute_job_tables()');
is($state, '55000', 'a second call: 55000');

# --- the scanner's statements, one shard per job ----------------------------------------------------------

my $job = job_uuid(901);
$coord->safe_psql('postgres', qq{
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at)
  VALUES ('$job', 'bucket-a', 'scan/', 'arn:x', now(), now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  VALUES ('$job', 'bucket-a', 'k1', 'e1', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  VALUES ('$job', 'bucket-a', 'k2', 'e2', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  VALUES ('$job', 'bucket-a', 'k2', 'e2', 'queued', now()) ON CONFLICT DO NOTHING;
UPDATE job_objects SET status = 'processing', last_error = NULL, updated_at = now()
  WHERE job_id = '$job' AND bucket = 'bucket-a' AND key = 'k1' AND etag = 'e1';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  VALUES ('$job', 'bucket-a', 'k1', 'e1', 'email', 'a***', 'ctx', 10, now())
  ON CONFLICT (job_id, bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  VALUES ('$job', 'bucket-a', 'k1', 'e1', 'email', 'a***', 'ctx', 10, now())
  ON CONFLICT (job_id, bucket, key, etag, detector, byte_offset) DO NOTHING;
});
is( $coord->safe_psql('postgres',
		"SELECT total_objects, queued_count, processing_count, total_findings, data_source FROM job_status('$job', true)"),
	'2|1|1|1|real_time', 'the scanner\'s statements are counted');
($state, $err) = refusal($coord, 'postgres', qq{
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  VALUES ('$job', 'bucket-a', 'k1', 'e1', 'email', 'a***', 'ctx', 10, now())
  ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING});
is($state, '42P10', "the old findings conflict target is refused (42P10): the README's key change");

is(task_count($coord, "SELECT * FROM job_progress_live WHERE job_id = '$job'"), 1, 'a job\'s real-time read: one task');
is(task_count($coord, "SELECT * FROM job_summary WHERE job_id = '$job'"), 1, 'job_summary of a job: one task');
is( task_count($coord,
		"UPDATE job_objects SET status = 'succeeded' WHERE job_id = '$job' AND bucket = 'bucket-a' AND key = 'k1' AND etag = 'e1'"),
	1, 'a status update: one task');
is( task_count($coord,
		"INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES ('$job', 'b', 'k', 'e', 'd', 'm', 1)"),
	1, 'a finding: one task');

# --- the caller's own writes, rollbacks, savepoints ----------------------------------------------------

my ($a, $b) = (job_uuid(1), job_uuid(2));
my $shards = $coord->safe_psql('postgres',
	"SELECT count(DISTINCT get_shard_id_for_distribution_column('jobs', x)) FROM unnest(ARRAY['$a', '$b']::uuid[]) x");
is($shards, '2', 'two jobs on two shards');
my $counts_before = $coord->safe_psql('postgres',
	"SELECT (SELECT total_objects FROM job_status('$a', true)), (SELECT total_objects FROM job_status('$b', true))");
my ($ta, $tb) = split /\|/, $counts_before;
is( $coord->safe_psql('postgres', qq{
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$a', 'b', 'own-' || g, 'e' FROM generate_series(1, 300) g;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$b', 'b', 'own-' || g, 'e' FROM generate_series(1, 200) g;
SELECT (SELECT total_objects FROM job_status('$a', true)), (SELECT total_objects FROM job_status('$b', true)),
       (SELECT sum(total_objects) FROM job_progress_live WHERE job_id IN ('$a', '$b'));
ROLLBACK;
}), join('|', $ta + 300, $tb + 200, $ta + $tb + 500), 'the caller\'s uncommitted writes on two shards are seen, by job and across jobs');
is( $coord->safe_psql('postgres',
		"SELECT (SELECT total_objects FROM job_status('$a', true)), (SELECT total_objects FROM job_status('$b', true))"),
	$counts_before, 'and are gone after ROLLBACK');

$coord->safe_psql('postgres', qq{
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$a', 'b', 'sp1-' || g, 'e' FROM generate_series(1, 10) g;
SAVEPOINT s;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$a', 'b', 'sp2-' || g, 'e' FROM generate_series(1, 20) g;
UPDATE job_objects SET status = 'failed' WHERE job_id = '$b' AND status = 'queued';
ROLLBACK TO SAVEPOINT s;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$b', 'b', 'sp3-' || g, 'e' FROM generate_series(1, 5) g;
COMMIT;
});
is(recount_differences($coord), '', 'savepoints rolled back on two shards: exact');

# --- a job's delete, TRUNCATE ----------------------------------------------------------------------------

my $c = job_uuid(3);
$coord->safe_psql('postgres', "DELETE FROM jobs WHERE job_id = '$c'");
is($coord->safe_psql('postgres', "SELECT count(*) FROM job_status('$c', true)"), '0', 'a deleted job is gone');
is($coord->safe_psql('postgres', "SELECT count(*) FROM job_objects WHERE job_id = '$c'"), '0', 'with its objects');
is(recount_differences($coord), '', 'the other jobs stay exact');

# --- folds on the worker nodes, refresh on the coordinator --------------------------------------------------

ok(defined wait_for($coord, 'postgres', 'SELECT count(*) = 0 FROM job_counter_deltas'),
	'the worker nodes fold the deltas of their shards');
ok( defined wait_for(
		$coord, 'postgres',
		"SELECT count(*) = 0 FROM job_counters c WHERE c.job_id = '$c'"),
	'the fold drops the deleted job\'s counters');
is(recount_differences($coord), '', 'exact after the folds');
is($w1->safe_psql('postgres', "SELECT count(*) FROM refresh_history WHERE id > $w1_history"),
	'0', 'a worker node does not refresh once the tables are distributed (nor records anything)');
ok( defined wait_for(
		$coord, 'postgres',
		"SELECT count(*) = 0 FROM job_progress_live l FULL JOIN job_progress p USING (job_id)
		  WHERE (l.total_objects, l.succeeded_count, l.total_findings) IS DISTINCT FROM (p.total_objects, p.succeeded_count, p.total_findings)"),
	'the coordinator refreshes job_progress');
is( $coord->safe_psql('postgres', "SELECT data_source, total_objects = (SELECT total_objects FROM job_status('$a', true)) FROM job_status('$a')"),
	'cached|t', 'job_status(id) answers from the cache, as real time does');

$coord->safe_psql('postgres', 'TRUNCATE job_objects');
is( $coord->safe_psql('postgres', 'SELECT sum(total_objects), sum(total_findings) FROM job_progress_live'),
	$coord->safe_psql('postgres', 'SELECT 0, count(*) FROM findings'),
	'TRUNCATE job_objects: every job has 0 objects, findings stay');
is(recount_differences($coord), '', 'exact after TRUNCATE');

# --- what a distributed database refuses -----------------------------------------------------------------------

($state) = refusal($coord, 'postgres', 'SELECT * FROM verify_job_counters()');
is($state, '0A000', 'verify_job_counters(): 0A000');
($state) = refusal($coord, 'postgres', 'SELECT repair_job_counters()');
is($state, '0A000', 'repair_job_counters(): 0A000');
($state) = refusal($coord, 'postgres', 'SELECT set_counter_maintenance(false)');
is($state, '0A000', 'set_counter_maintenance(): 0A000');

$_->stop for ($coord, $w1, $w2);
done_testing();
