# pg_cron as the scheduler: cron.schedule('... SELECT refresh_job_progress()')
# refreshes job_progress, is recorded in refresh_history with origin
# 'pg_cron', and never refreshes at the same time as the worker: while one
# refresh runs, the other one skips (outcome 'skipped').
#
# The installed pg_cron (Debian postgresql-15-cron 1.4.x) has no second
# schedules (those came with pg_cron 1.5), so the job runs on the minute:
# this file waits for one minute boundary.  To see both a pg_cron refresh
# and a skip in that one run, the worker is paused (refresh_interval = 0)
# and a session holds a lock that the refresh needs; the pg_cron refresh
# starts at the minute and waits for the lock while holding the refresh
# lock; the worker, re-enabled, must then skip; the lock is released and
# the pg_cron refresh completes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node(
	'cron',
	preload => 'pg_cron,s3scan_jobs',
	conf    => qq{
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
s3scan_jobs.database = 'postgres'
s3scan_jobs.refresh_interval = '1s'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', 'CREATE EXTENSION s3scan_jobs');
note 'pg_cron version: '
  . $node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'");

my $job = add_job($node, 'postgres', '66666666-6666-6666-6666-666666666666', 10, 2);
ok( defined wait_for(
		$node, 'postgres',
		"SELECT total_objects FROM job_progress WHERE job_id = '$job'", '10'),
	'the worker refreshes alongside pg_cron');

# Pause the worker, then hold a lock the refresh query needs.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = 0; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT state FROM refresh_worker_status WHERE database = 'postgres'", 'disabled'),
	'worker paused');
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');

my $sched = $node->safe_psql('postgres',
	"SELECT cron.schedule('s3scan-refresh', '* * * * *', 'SELECT refresh_job_progress()')");
like($sched, qr/^\d+$/, 'cron.schedule accepts the refresh job');

# The pg_cron run starts at the next minute and waits for the lock.
my $cron_running = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
  WHERE NOT l.granted AND l.locktype = 'relation' AND l.relation = 'jobs'::regclass
    AND a.backend_type <> '$WORKER_TYPE'";
ok(defined wait_for($node, 'postgres', $cron_running, '1', 150),
	'the pg_cron job starts a refresh at the minute (it waits for the held lock)')
  or diag($node->safe_psql('postgres', 'SELECT * FROM cron.job_run_details'));
note 'pg_cron backend: '
  . $node->safe_psql('postgres',
	"SELECT backend_type || ' / ' || coalesce(application_name, '') || ' / ' || coalesce(query, '')
	   FROM pg_stat_activity WHERE wait_event_type = 'Lock'");

# Re-enable the worker: while pg_cron's refresh runs, the worker skips.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1s'; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND outcome = 'skipped'"),
	'the worker skips while the pg_cron refresh runs (outcome skipped)');
is($node->safe_psql('postgres', $cron_running), '1', 'the pg_cron refresh is still running');
is( $node->safe_psql('postgres',
		"SELECT last_refresh_outcome FROM refresh_worker_status WHERE database = 'postgres'"),
	'skipped',
	'refresh_worker_status shows the skip');

$locker->query_safe('COMMIT');
$locker->quit;

ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) > 0 FROM refresh_history WHERE outcome = 'refreshed' AND origin = 'pg_cron'"),
	'the pg_cron refresh completes and is recorded with origin pg_cron')
  or diag(
	$node->safe_psql('postgres',
		'SELECT id, started_at, outcome, origin, error FROM refresh_history ORDER BY id DESC LIMIT 10'
	));
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM refresh_history WHERE origin = 'sql'"),
	'0',
	'no refresh is mistaken for a plain SQL call');
is( $node->safe_psql(
		'postgres',
		"SELECT status FROM cron.job_run_details WHERE jobid = $sched ORDER BY runid LIMIT 1"),
	'succeeded',
	'pg_cron records its run as succeeded');

# The worker refreshes again afterwards: twice, after a change each time (with nothing changed
# its passes are 'unchanged').
my $maxh = $node->safe_psql('postgres', 'SELECT max(id) FROM refresh_history');
for my $n (1 .. 2)
{
	my $more = add_job($node, 'postgres', "66666666-6666-6666-6666-00000000000$n", $n, 0);
	ok( defined wait_for(
			$node, 'postgres',
			"SELECT total_objects FROM job_progress WHERE job_id = '$more'", $n),
		"a change after the pg_cron refresh is refreshed ($n)");
}
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND id > $maxh"
	),
	'the worker refreshes again after the pg_cron refresh');

# No two refreshes overlapped.  started_at is the refresh transaction's
# start, a moment before the refresh takes its lock, so a refresh that
# follows another one at once can appear to start up to that moment early:
# allow 250 ms.  A real overlap here lasts as long as the lock was held.
my $overlaps = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM refresh_history a JOIN refresh_history b ON a.id < b.id
 WHERE a.outcome = 'refreshed' AND b.outcome = 'refreshed'
   AND a.started_at < b.started_at + b.duration_ms * interval '1 ms' - interval '250 ms'
   AND b.started_at < a.started_at + a.duration_ms * interval '1 ms' - interval '250 ms'});
is($overlaps, '0', 'no two refreshes overlap in time')
  or diag(
	$node->safe_psql(
		'postgres',
		"SELECT id, started_at, duration_ms, origin FROM refresh_history WHERE outcome = 'refreshed' ORDER BY started_at"
	));
my $cron_ms = $node->safe_psql('postgres',
	"SELECT round(max(duration_ms)) FROM refresh_history WHERE origin = 'pg_cron' AND outcome = 'refreshed'");
cmp_ok($cron_ms, '>', 500, "the pg_cron refresh spanned the worker's skips (${cron_ms} ms)");

$node->safe_psql('postgres', "SELECT cron.unschedule('s3scan-refresh')");
$node->stop;
done_testing();
