# The preloaded refresh worker refreshes job_progress only when something it shows changed
# (1.4): every transaction that changes jobs, job_objects or findings, or rewrites the counters,
# moves a count in shared memory at commit or prepare; a pass that finds the count where it was at
# a refresh that saw everything records outcome 'unchanged' instead of refreshing.
#  (a) Idle, after the first refresh every pass is 'unchanged': no REFRESH runs (the reads of
#      job_progress in pg_stat_all_tables stand still), the history row has no mode and no totals,
#      materialized_view_refresh_log.last_refreshed_at moves to each pass's transaction start,
#      job_status(id)'s cache_timestamp moves with it, refresh_worker_status says 'unchanged'.
#  (b) Each kind of change is followed by a pass that refreshes, job_progress then equals
#      job_progress_live, and the passes are 'unchanged' again: INSERT, UPDATE, DELETE of a job
#      (also of one without objects), an object's status, an object deleted, a finding inserted,
#      TRUNCATE findings, TRUNCATE jobs CASCADE, repair_job_counters(), writes under
#      session_replication_role = replica. A rolled-back (or failed) write leaves the passes
#      'unchanged'. While the counters are off (set_counter_maintenance(false)), while a trigger
#      on jobs that moves the count does not fire always (disabled, or ENABLE for the origin role
#      only), and while a prepared transaction with a change exists, every pass refreshes; after
#      set_counter_maintenance(true), the trigger enabled again, COMMIT PREPARED (which moves no
#      count) or ROLLBACK PREPARED, the worker refreshes and then skips again. A pass that was
#      skipped (a person's REFRESH held the refresh lock) or failed (cancelled while it waited
#      for a lock) makes the next pass refresh, so a change counted before it is not lost.
#  (c) A worker restarted (SIGTERM) refreshes on its first pass although nothing changed, then
#      goes back to 'unchanged'.
#  (d) A person's REFRESH ... WITH NO DATA is followed by a real refresh (no skip while the cache
#      holds no data), and so is a write made while the jobs trigger was disabled and enabled
#      again within one transaction (every ALTER TABLE moves the count).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $db   = 'scans';
my $node = new_s3scan_node(
	'when_changed',
	preload => 1,
	conf    => "s3scan_jobs.database = '$db'\n"
	  . "s3scan_jobs.refresh_interval = '200ms'\n"
	  . "max_prepared_transactions = 4\n");
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db,        'CREATE EXTENSION s3scan_jobs');

sub job { return sprintf('eeeeeeee-0000-4000-8000-%012d', $_[0]); }
my ($j1, $j2) = (job(1), job(2));
add_job($node, $db, $j1, 12, 3);
add_job($node, $db, $j2, 4,  0);

sub sq { return $node->safe_psql($db, $_[0]); }

# A time after everything committed so far (a new session's clock).
sub ts_now { return sq('SELECT clock_timestamp()'); }

# The id of the oldest worker pass with $outcome that matches $cond, waited for; undef on timeout.
sub wait_pass
{
	my ($outcome, $cond, $what, $timeout) = @_;
	my $id = '';
	wait_for_cond(
		sub {
			$id = sq("SELECT coalesce(min(id)::text, '') FROM refresh_history
			           WHERE origin = 'worker' AND outcome = '$outcome' AND $cond");
			return $id ne '';
		},
		$timeout,
		$what);
	return $id eq '' ? undef : $id;
}

# The outcomes of the first $n worker passes after history id $id, waited for.
sub passes_after
{
	my ($id, $n, $what) = @_;
	wait_for($node, $db,
		"SELECT count(*) >= $n FROM refresh_history WHERE origin = 'worker' AND id > $id")
	  // diag("timed out waiting for $n passes: $what");
	return split /,/,
	  sq("SELECT coalesce(string_agg(outcome, ',' ORDER BY id), '') FROM
	        (SELECT id, outcome FROM refresh_history WHERE origin = 'worker' AND id > $id
	          ORDER BY id LIMIT $n) s");
}

# Rows that differ between the cache and the live view, in one snapshot.
sub cache_diff
{
	return sq("SELECT count(*) FROM ((TABLE job_progress EXCEPT ALL TABLE job_progress_live)
	           UNION ALL (TABLE job_progress_live EXCEPT ALL TABLE job_progress)) d");
}

# Reads of job_progress by any backend (a REFRESH ... CONCURRENTLY reads it to compute its diff).
sub matview_reads
{
	return sq("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_all_tables
	           WHERE relid = 'job_progress'::regclass");
}

# From a settled state (the last pass 'unchanged': nothing changed since a complete refresh), runs
# $sql; a pass refreshes, job_progress then equals job_progress_live (and answers $shows_sql with
# $shows), and the passes are 'unchanged' again after one refresh, or two (a pass in flight while
# the change committed may read the count before it moved). Returns the id of that 'unchanged'
# pass. (A pass that started before the change committed can only have refreshed if it read the
# count after it moved, hence after the commit: a refresh that started after $ts sees the change.
# The refresh may start before a look at the clock after the commit.)
sub change_refreshes
{
	my ($label, $sql, $shows_sql, $shows) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ts = ts_now();
	sq($sql);
	my $r = wait_pass('refreshed', "started_at > '$ts'", "$label: a refresh");
	ok(defined $r, "$label: a pass refreshes");
	is(cache_diff(), '0', "$label: job_progress then equals job_progress_live");
	is(sq($shows_sql), $shows, "$label: job_progress shows it") if defined $shows_sql;
	my $u = wait_pass('unchanged', 'id > ' . ($r // 0), "$label: unchanged again");
	ok(defined $u, "$label: then the passes are 'unchanged' again");
	cmp_ok(
		sq("SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'
		     AND started_at > '$ts' AND id < " . ($u // 0)),
		'<=', 2, "$label: one refresh (two at most), not one per pass");
	return $u // 0;
}

# Every one of $n passes after history id $id refreshes.
sub every_pass_refreshes
{
	my ($label, $id, $n) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @o = passes_after($id, $n, $label);
	is(join(',', @o), join(',', ('refreshed') x $n), "$label: every pass refreshes");
}

# ================================ (a) idle ================================================

my $first = wait_pass('refreshed', 'true', 'a first refresh');
ok(defined $first, 'the worker refreshes on its first pass');
my $settled = wait_pass('unchanged', 'id > ' . ($first // 0), 'a first unchanged pass');
ok(defined $settled, "with nothing changed since, a pass records 'unchanged'");
is(cache_diff(), '0', 'job_progress equals job_progress_live');

my @o = passes_after($settled, 10, 'idle passes');
is(join(',', @o), join(',', ('unchanged') x 10), "idle: ten passes in a row are 'unchanged'");
# (the statistics of the last real refresh are flushed by now: a backend sends them at most once
# a second, and these passes took two)
my $reads = matview_reads();
my $mark  = sq('SELECT max(id) FROM refresh_history');
@o = passes_after($mark, 10, 'idle passes');
is(join(',', @o), join(',', ('unchanged') x 10), "idle: ten more passes are 'unchanged'");
is(matview_reads(), $reads, 'no pass read job_progress: no REFRESH ran (pg_stat_all_tables)');
is( sq("SELECT count(*) FROM refresh_history WHERE outcome = 'unchanged'
         AND (origin <> 'worker' OR mode IS NOT NULL OR total_jobs IS NOT NULL
              OR total_objects IS NOT NULL OR error IS NOT NULL
              OR started_at IS NULL OR duration_ms IS NULL OR duration_ms < 0)"),
	'0', "'unchanged' rows: the worker's, with start and duration, no mode, no totals, no error");

my $log_sql = "SELECT last_refreshed_at FROM materialized_view_refresh_log WHERE view_name = 'job_progress'";
my $log1    = sq($log_sql);
ok(defined wait_for($node, $db, "SELECT ($log_sql) > '$log1'"),
	"the log's last_refreshed_at keeps moving");
# In one snapshot: the log's time is the newest pass's transaction start (a moment before its
# started_at), job_status(id) gives that time, the log's totals are those of job_progress.
is( sq("BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT h.outcome, l.last_refreshed_at <= h.started_at AND l.last_refreshed_at > h.started_at - interval '1 second',
       s.cache_timestamp = l.last_refreshed_at, s.data_source,
       l.total_jobs = (SELECT count(*) FROM job_progress),
       l.total_objects = (SELECT sum(total_objects) FROM job_progress)
FROM materialized_view_refresh_log l,
     LATERAL (SELECT * FROM refresh_history WHERE origin = 'worker' ORDER BY id DESC LIMIT 1) h,
     job_status('$j1') s
WHERE l.view_name = 'job_progress';
COMMIT;"),
	'unchanged|t|t|cached|t|t',
	"an 'unchanged' pass moves the log's time to its transaction start; job_status(id) answers with it; the totals stay");
my $cache_ts = sq("SELECT cache_timestamp FROM job_status('$j1')");
ok(defined wait_for($node, $db, "SELECT cache_timestamp > '$cache_ts' FROM job_status('$j1')"),
	"job_status(id)'s cache_timestamp moves with the passes");
my $st = status_row($node, $db, $db);
is($st->{last_refresh_outcome}, 'unchanged', "refresh_worker_status says 'unchanged'");
is($st->{consecutive_failures}, '0',         'and no failures');
my $start1 = $st->{last_refresh_start};
ok( defined wait_for(
		$node, $db,
		"SELECT last_refresh_start > '$start1' AND last_refresh_outcome = 'unchanged'
		   FROM refresh_worker_status WHERE database = '$db'"),
	"refresh_worker_status: last_refresh_start moves with each 'unchanged' pass");

# ================================ (b) changes =============================================

# A new job, with a positive control of the statistics: its REFRESH reads job_progress.
my $j3 = job(3);
$reads = matview_reads();
my $ts = ts_now();
add_job($node, $db, $j3, 6, 2);
my $r = wait_pass('refreshed', "started_at > '$ts'", 'a refresh after a new job');
ok(defined $r, 'INSERT of a job with objects and findings: a pass refreshes');
passes_after($r, 10, 'passes after the refresh');
cmp_ok(matview_reads(), '>', $reads, 'that REFRESH shows in pg_stat_all_tables (the control)');
is(sq("SELECT total_objects || '|' || total_findings FROM job_progress WHERE job_id = '$j3'"),
	'6|2', 'INSERT of a job: job_progress shows it');
is(cache_diff(), '0', 'INSERT of a job: job_progress equals job_progress_live');
ok(defined wait_pass('unchanged', 'id > ' . ($r // 0), 'unchanged again'),
	"INSERT of a job: then the passes are 'unchanged' again");

my $j4 = job(4);
change_refreshes('INSERT of a job without objects',
	"INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j4', 'bucket-tap', 'e/', now())",
	"SELECT total_objects FROM job_progress WHERE job_id = '$j4'", '0');
change_refreshes('UPDATE of a job',
	"UPDATE jobs SET prefix = 'renamed/', updated_at = now() WHERE job_id = '$j4'",
	"SELECT prefix FROM job_progress WHERE job_id = '$j4'", 'renamed/');
change_refreshes('DELETE of a job without objects',
	"DELETE FROM jobs WHERE job_id = '$j4'",
	"SELECT count(*) FROM job_progress WHERE job_id = '$j4'", '0');
change_refreshes('an object status update',
	"UPDATE job_objects SET status = 'succeeded', updated_at = now() WHERE job_id = '$j1' AND status = 'queued'",
	"SELECT queued_count || '|' || succeeded_count FROM job_progress WHERE job_id = '$j1'", '0|6');
change_refreshes('an object deleted',
	"DELETE FROM job_objects WHERE job_id = '$j3' AND key = 'scan/$j3/obj-1'",
	"SELECT total_objects FROM job_progress WHERE job_id = '$j3'", '5');
change_refreshes('a finding inserted',
	"INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
	 VALUES ('$j2', 'bucket-tap', 'scan/$j2/obj-1', 'etag-1', 'email', 'x***', 'c', 7, now())",
	"SELECT total_findings FROM job_progress WHERE job_id = '$j2'", '1');

# Rolled back, or failed: nothing committed, nothing to refresh.
my ($ret, $out, $err) = psql_result($node, $db, "
BEGIN;
INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('" . job(90) . "', 'b', '', now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  VALUES ('" . job(90) . "', 'b', 'k', 'e', 'queued', now());
ROLLBACK;
BEGIN;
UPDATE job_objects SET status = 'failed', updated_at = now() WHERE job_id = '$j1';
DELETE FROM findings WHERE job_id = '$j1';
UPDATE jobs SET prefix = 'rolled-back/' WHERE job_id = '$j2';
ROLLBACK;
BEGIN;
DELETE FROM jobs WHERE job_id = '$j3';
ROLLBACK;
BEGIN;
TRUNCATE jobs CASCADE;
ROLLBACK;
SELECT 'done';");
is("$ret|$out", '0|done', 'writes rolled back') or diag($err);
($ret, $out, $err) = psql_result($node, $db,
	"BEGIN; UPDATE jobs SET prefix = 'never/' WHERE job_id = '$j2'; INSERT INTO jobs (job_id, bucket) VALUES ('$j2', 'dup'); COMMIT;");
isnt($ret, 0, 'a transaction that fails (duplicate key) after a change');
$ts = ts_now();
$mark = sq("SELECT coalesce(max(id), 0) FROM refresh_history WHERE started_at <= '$ts'");
@o = passes_after($mark, 5, 'passes after the rollbacks');
is(join(',', @o), join(',', ('unchanged') x 5), "rolled-back and failed writes leave the passes 'unchanged'");
is(cache_diff(), '0', 'and job_progress still equals job_progress_live');

change_refreshes('repair_job_counters()', 'SELECT repair_job_counters()');
change_refreshes("repair_job_counters(one job)", "SELECT repair_job_counters('$j1')");

# The counters off: job_progress_live reads the tables, whose changes move no count.
sq('SELECT set_counter_maintenance(false)');
$ts = ts_now();
$r  = wait_pass('refreshed', "started_at > '$ts'", 'a refresh after set_counter_maintenance(false)');
ok(defined $r, 'set_counter_maintenance(false): a pass refreshes');
every_pass_refreshes('counters off', $r, 3);
sq("UPDATE job_objects SET status = 'failed', updated_at = now() WHERE job_id = '$j2'");
$ts = ts_now();
ok(defined wait_pass('refreshed', "started_at > '$ts'", 'a refresh after a write'),
	'counters off: a write is refreshed');
is(cache_diff(), '0', 'counters off: job_progress equals job_progress_live');
is(sq("SELECT failed_count FROM job_progress WHERE job_id = '$j2'"), '4', 'counters off: and shows the write');
sq('SELECT set_counter_maintenance(true)');
$ts = ts_now();
ok(defined wait_pass('unchanged', "started_at > '$ts'", 'unchanged after set_counter_maintenance(true)'),
	"set_counter_maintenance(true): then the passes are 'unchanged' again");
is(cache_diff(), '0', 'set_counter_maintenance(true): job_progress equals job_progress_live');
is(sq("SELECT failed_count FROM job_progress WHERE job_id = '$j2'"), '4', 'set_counter_maintenance(true): job_progress shows the write');

# The triggers on jobs that move the count: while one does not fire always, every pass refreshes.
my $k = 10;
for my $case (
	[ 'jobs_note_changes disabled', 'DISABLE TRIGGER jobs_note_changes', 'jobs_note_changes' ],
	[ 'jobs_note_truncate disabled', 'DISABLE TRIGGER jobs_note_truncate', 'jobs_note_truncate' ],
	[ 'jobs_note_changes enabled for the origin role only', 'ENABLE TRIGGER jobs_note_changes', 'jobs_note_changes' ])
{
	my ($label, $alter, $trigger) = @$case;
	sq("ALTER TABLE jobs $alter");
	$ts = ts_now();
	$r  = wait_pass('refreshed', "started_at > '$ts'", "$label: a refresh");
	ok(defined $r, "$label: a pass refreshes");
	every_pass_refreshes($label, $r, 3);
	my $j = job($k++);
	sq("INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j', 'b', 't/', now())");
	$ts = ts_now();
	ok(defined wait_pass('refreshed', "started_at > '$ts'", "$label: a refresh after a new job"),
		"$label: a job inserted meanwhile is refreshed");
	is(sq("SELECT count(*) FROM job_progress WHERE job_id = '$j'"), '1', "$label: job_progress shows it");
	sq("ALTER TABLE jobs ENABLE ALWAYS TRIGGER $trigger");
	$ts = ts_now();
	ok(defined wait_pass('unchanged', "started_at > '$ts'", "$label: unchanged again"),
		"$label: enabled always again, the passes are 'unchanged' again");
	is(cache_diff(), '0', "$label: job_progress equals job_progress_live");
}

# Writes of a logical replication apply, or under session_replication_role = replica.
my $j5 = job(5);
change_refreshes('replica role: INSERT of a job, objects, findings',
	"SET session_replication_role = replica;
	 INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j5', 'bucket-tap', 'r/', now());
	 INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
	   SELECT '$j5', 'bucket-tap', 'r/' || g, 'e', 'queued', now() FROM generate_series(1, 3) g;
	 INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
	   VALUES ('$j5', 'bucket-tap', 'r/1', 'e', 'email', 'x***', 'c', 1, now());",
	"SELECT total_objects || '|' || total_findings FROM job_progress WHERE job_id = '$j5'", '3|1');
change_refreshes('replica role: UPDATE of a job',
	"SET session_replication_role = replica; UPDATE jobs SET prefix = 'replica/' WHERE job_id = '$j5'",
	"SELECT prefix FROM job_progress WHERE job_id = '$j5'", 'replica/');
change_refreshes('replica role: an object status update',
	"SET session_replication_role = replica;
	 UPDATE job_objects SET status = 'succeeded', updated_at = now() WHERE job_id = '$j5' AND key = 'r/2'",
	"SELECT succeeded_count FROM job_progress WHERE job_id = '$j5'", '1');
# (no foreign-key cascade under the replica role: the objects and findings go first)
change_refreshes('replica role: DELETE of a job, its objects and findings',
	"SET session_replication_role = replica;
	 BEGIN;
	 DELETE FROM findings WHERE job_id = '$j5';
	 DELETE FROM job_objects WHERE job_id = '$j5';
	 DELETE FROM jobs WHERE job_id = '$j5';
	 COMMIT;",
	"SELECT count(*) FROM job_progress WHERE job_id = '$j5'", '0');

# A skipped pass (a person's REFRESH holds the refresh lock) makes the next pass refresh: the change
# it counted is not lost.
my $person = $node->background_psql($db);
$person->query_safe('BEGIN; REFRESH MATERIALIZED VIEW job_progress');
my $j6 = job(6);
sq("INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j6', 'b', 's/', now())");
$ts = ts_now();
my $s = wait_pass('skipped', "started_at > '$ts'", 'a skipped pass');
ok(defined $s, "a change while a person's REFRESH runs: the worker's pass is skipped");
$person->query_safe('COMMIT');
$person->quit;
# (passes until the COMMIT skip as well)
$r = wait_pass('refreshed', 'id > ' . ($s // 0), 'a refresh after the skips');
ok(defined $r, 'after the skipped passes a pass refreshes');
is( sq("SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND id > " . ($s // 0)
		  . " AND id < " . ($r // 0) . " AND outcome <> 'skipped'"),
	'0', "no pass between the skipped ones and that refresh was 'unchanged' (only skipped ones)");
is(sq("SELECT count(*) FROM job_progress WHERE job_id = '$j6'"), '1', 'and job_progress shows the change');
ok(defined wait_pass('unchanged', 'id > ' . ($r // 0), 'unchanged again'), "then 'unchanged' again");

# A failed pass (cancelled while it waits for a lock on job_progress) makes the next pass refresh.
# (LOCK TABLE takes no materialized view: an open ALTER holds SHARE UPDATE EXCLUSIVE on it, which
# the refresh's EXCLUSIVE waits for; it is rolled back.)
my $worker = worker_pid($node, $db);
my $locker = $node->background_psql($db);
$locker->query_safe('BEGIN; ALTER MATERIALIZED VIEW job_progress SET (fillfactor = 100)');
my $j7 = job(7);
sq("INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j7', 'b', 'f/', now())");
ok( defined wait_for(
		$node, $db, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $worker"),
	'a change while job_progress is locked: the refresh waits for the lock');
sq("SELECT pg_cancel_backend($worker)");
my $f = wait_pass('failed', "error = 'canceling statement due to user request'", 'a failed pass');
ok(defined $f, 'the cancelled pass is recorded as failed');
$locker->query_safe('ROLLBACK');
$locker->quit;
$r = wait_pass('refreshed', 'id > ' . ($f // 0), 'a refresh after the failure');
ok(defined $r, 'after the failed pass a pass refreshes');
is( sq("SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND id > " . ($f // 0)
		  . " AND id < " . ($r // 0) . " AND outcome <> 'failed'"),
	'0', "no pass between the failed one and that refresh was 'unchanged' (only failed ones, if any)");
is(sq("SELECT count(*) FROM job_progress WHERE job_id = '$j7'"), '1', 'job_progress shows the change');
ok(defined wait_pass('unchanged', 'id > ' . ($r // 0), 'unchanged again'), "then 'unchanged' again");

# A prepared transaction: its changes become visible at COMMIT PREPARED, which moves no count.
my $j8 = job(8);
sq("BEGIN;
INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j8', 'b', 'p/', now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  SELECT '$j8', 'b', 'p/' || g, 'e', 'queued', now() FROM generate_series(1, 5) g;
PREPARE TRANSACTION 'tap_022_commit'");
$ts = ts_now();
$r  = wait_pass('refreshed', "started_at > '$ts'", 'a refresh after PREPARE');
ok(defined $r, 'PREPARE TRANSACTION with a change: a pass refreshes');
every_pass_refreshes('while a transaction is prepared', $r, 4);
is(sq("SELECT count(*) FROM job_progress WHERE job_id = '$j8'"), '0', 'job_progress does not show it yet');
sq("COMMIT PREPARED 'tap_022_commit'");
$ts = ts_now();
my $u = wait_pass('unchanged', "started_at > '$ts'", 'unchanged after COMMIT PREPARED');
ok(defined $u, "after COMMIT PREPARED the passes are 'unchanged' again");
is( sq("SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND id > " . ($r // 0)
		  . " AND id < " . ($u // 0) . " AND outcome <> 'refreshed'"),
	'0', "no pass was 'unchanged' from the PREPARE until a refresh after the COMMIT PREPARED");
cmp_ok(
	sq("SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND started_at > '$ts' AND id < "
		  . ($u // 0)),
	'<=', 3, 'job_progress caught up within a few passes');
is(sq("SELECT total_objects FROM job_progress WHERE job_id = '$j8'"), '5', 'job_progress shows the committed change');
is(cache_diff(), '0', 'job_progress equals job_progress_live');

sq("BEGIN; DELETE FROM jobs WHERE job_id = '$j8'; PREPARE TRANSACTION 'tap_022_rollback'");
$ts = ts_now();
$r  = wait_pass('refreshed', "started_at > '$ts'", 'a refresh after PREPARE');
every_pass_refreshes('while a second transaction is prepared', $r // 0, 3);
sq("ROLLBACK PREPARED 'tap_022_rollback'");
$ts = ts_now();
ok(defined wait_pass('unchanged', "started_at > '$ts'", 'unchanged after ROLLBACK PREPARED'),
	"after ROLLBACK PREPARED the passes are 'unchanged' again");
is(sq("SELECT total_objects FROM job_progress WHERE job_id = '$j8'"), '5', 'the job is still there');
is(cache_diff(), '0', 'job_progress equals job_progress_live');

# TRUNCATE: the counter triggers' and the jobs trigger's statement-level forms.
change_refreshes('TRUNCATE findings', 'TRUNCATE findings',
	'SELECT sum(total_findings) FROM job_progress', '0');
change_refreshes('TRUNCATE jobs CASCADE', 'TRUNCATE jobs CASCADE',
	'SELECT count(*) FROM job_progress', '0');
change_refreshes('a job after the TRUNCATE', "INSERT INTO jobs (job_id, bucket, prefix, created_at)
	VALUES ('$j1', 'b', 'again/', now())", 'SELECT count(*) FROM job_progress', '1');

# ==================== a person's WITH NO DATA; a trigger off within a transaction ===========

# A person's REFRESH ... WITH NO DATA empties the cache without a data change: the worker does
# not skip while job_progress holds no data.
sq('REFRESH MATERIALIZED VIEW job_progress WITH NO DATA');
ok(defined wait_for($node, $db,
		"SELECT relispopulated FROM pg_class WHERE oid = 'job_progress'::regclass", 't'),
	'after REFRESH ... WITH NO DATA the worker populates job_progress again');
# A write made while the jobs trigger was disabled, inside the transaction that enabled it again:
# its ALTER TABLEs move the count (every DDL the table event trigger sees does).
my $j9 = job(9);
sq("BEGIN;
ALTER TABLE jobs DISABLE TRIGGER jobs_note_changes;
INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('$j9', 'b', 'd/', now());
ALTER TABLE jobs ENABLE ALWAYS TRIGGER jobs_note_changes;
COMMIT;");
ok(defined wait_for($node, $db, "SELECT count(*) FROM job_progress WHERE job_id = '$j9'", '1'),
	'a job inserted while its trigger was disabled in the same transaction is refreshed');

# ================================ (c) a restarted worker ==================================

# Settled: the old worker's last passes are 'unchanged'.
$ts = ts_now();
ok(defined wait_pass('unchanged', "started_at > '$ts'", 'settled'), 'before the restart: unchanged');
my $old    = worker_pid($node, $db);
my $before = sq('SELECT max(id) FROM refresh_history');
ok(kill('TERM', $old), "SIGTERM to the worker ($old)");
my $new;
ok( defined wait_for_cond(
		sub { my $p = worker_pid($node, $db); $new = $p if defined $p && $p ne $old; defined $new },
		$WAIT_TIMEOUT, 'a new worker'),
	'a new worker serves the database');
my $new_start = sq("SELECT backend_start FROM pg_stat_activity WHERE pid = " . ($new // 0));
$r = wait_pass('refreshed', "id > $before", 'the new worker refreshes');
ok(defined $r, 'the new worker refreshes');
passes_after($r // 0, 3, 'passes after its first refresh');
is(sq("SELECT started_at >= '$new_start' FROM refresh_history WHERE id = " . ($r // 0)), 't',
	'that refresh is the new process\'s (it started after the process did)');
my $after = sq("SELECT string_agg(outcome, ',' ORDER BY id) FROM refresh_history
                WHERE origin = 'worker' AND id > $before");
like($after, qr/^(unchanged,){0,2}refreshed(,unchanged){3,}$/,
	"the new worker refreshes once although nothing changed, then its passes are 'unchanged' "
	  . "(before it: at most the old worker's last passes)");
is(cache_diff(), '0', 'job_progress equals job_progress_live');

ok(!$node->log_contains('terminating any other active server processes'), 'no crash-restart');
$node->stop;
done_testing();
