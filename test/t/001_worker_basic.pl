# The preloaded refresh worker: it looks at job_progress on its interval
# (refreshing it when something changed, a pass 'unchanged' otherwise),
# shows what it does (pg_stat_activity, refresh_worker_status), holds no
# lock and no snapshot between refreshes, serves several databases (one
# worker each), applies a reload at once (same pid), and keeps the history
# bounded by s3scan_jobs.history_limit.

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
	'basic',
	preload => 1,
	conf    => qq{
s3scan_jobs.database = 'postgres'
s3scan_jobs.refresh_interval = '1s'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION s3scan_jobs');

my $job = add_job($node, 'postgres', '11111111-1111-1111-1111-111111111111', 8, 3);

# --- The worker refreshes job_progress on its own -----------------------

ok( defined wait_for(
		$node, 'postgres',
		"SELECT total_objects, total_findings FROM job_progress WHERE job_id = '$job'",
		'8|3'),
	'worker refresh makes a new job appear in job_progress');

# A second change, a second refresh (with nothing changed a pass is 'unchanged').
$node->safe_psql('postgres', "UPDATE jobs SET updated_at = now() WHERE job_id = '$job'");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'refresh_history records refreshes with origin worker');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'unchanged'"),
	"with nothing changed since, a pass is recorded as 'unchanged'");

is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'
		   AND (started_at IS NULL OR duration_ms IS NULL OR duration_ms < 0
		        OR mode NOT IN ('concurrent','full') OR total_jobs IS NULL OR total_objects IS NULL)"),
	'0',
	'worker history rows carry start, duration, mode and totals');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND outcome = 'unchanged'
		   AND (started_at IS NULL OR duration_ms IS NULL OR duration_ms < 0
		        OR mode IS NOT NULL OR total_jobs IS NOT NULL OR total_objects IS NOT NULL)"),
	'0',
	"'unchanged' rows carry start and duration, no mode and no totals");

is( $node->safe_psql(
		'postgres',
		"SELECT total_jobs, total_objects FROM materialized_view_refresh_log WHERE view_name = 'job_progress'"),
	'1|8',
	'the refresh log row is kept current by the worker');

# --- pg_stat_activity shows the worker and what it does ------------------

my $pid = worker_pid($node, 'postgres');
ok(defined $pid, "one refresh worker in pg_stat_activity (pid " . ($pid // 'none') . ")");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'"),
	'1',
	'exactly one refresh worker for one configured database');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT query IN ('s3scan_jobs: waiting for the next refresh of job_progress',
		                  's3scan_jobs: refreshing job_progress', 's3scan_jobs: looking for the extension')
		   FROM pg_stat_activity WHERE pid = $pid"
	),
	'pg_stat_activity.query of the worker says what it does, in its own words');
note "worker query column: "
  . $node->safe_psql('postgres',
	"SELECT query FROM pg_stat_activity WHERE pid = $pid");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$LAUNCHER_TYPE'"),
	'1',
	'the launcher shows in pg_stat_activity');

# --- refresh_worker_status -------------------------------------------------

my $st = status_row($node, 'postgres', 'postgres');
ok($st, 'refresh_worker_status has a row for the served database');
is($st->{pid}, $pid, 'status pid is the worker pid');
like($st->{state}, qr/^(idle|refreshing)$/, "status state is idle or refreshing ($st->{state})");
is($st->{started_by}, 'preload', 'status started_by is preload');
ok(defined $st->{last_refresh_start}, 'status shows the last refresh start');
ok(defined $st->{last_refresh_duration_ms}, 'status shows the last refresh duration');
like($st->{last_refresh_outcome}, qr/^(refreshed|unchanged)$/,
	"status shows the last outcome ($st->{last_refresh_outcome})");
is($st->{consecutive_failures}, '0', 'no consecutive failures');
is( $node->safe_psql(
		'postgres',
		"SELECT next_refresh_due > last_refresh_start
		        AND next_refresh_due <= last_refresh_start + interval '1 minute'
		   FROM refresh_worker_status WHERE database = 'postgres'"),
	't',
	'next refresh is due after the last one, on the 1s cadence');

# Cadence: consecutive worker passes (refreshed or unchanged) are about one interval apart.
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 4 FROM refresh_history WHERE origin = 'worker'"),
	'several worker passes recorded');
my $gap = $node->safe_psql(
	'postgres', q{
SELECT max(extract(epoch FROM g)) FROM (
  SELECT started_at - lag(started_at) OVER (ORDER BY id) AS g
  FROM (SELECT * FROM refresh_history WHERE origin = 'worker' ORDER BY id DESC LIMIT 4) s) t});
cmp_ok($gap, '<', 5, "worker passes follow the 1s interval (largest gap ${gap}s)");

# --- SIGHUP: a longer interval is applied at once, same pid --------------

$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1h'; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT next_refresh_due > now() + interval '50 minutes' AND state = 'idle'
		   FROM refresh_worker_status WHERE database = 'postgres'"),
	'after reload with 1h the next refresh is due in about an hour');
is(worker_pid($node, 'postgres'), $pid, 'reload keeps the same worker pid');

# --- Between refreshes: no lock, no snapshot ------------------------------

my $quiet = stays_true(
	sub {
		my $r = $node->safe_psql(
			'postgres', qq{
SELECT (SELECT backend_xmin IS NULL AND backend_xid IS NULL FROM pg_stat_activity WHERE pid = $pid),
       (SELECT count(*) FROM pg_locks WHERE pid = $pid AND locktype <> 'virtualxid')});
		return $r eq 't|0';
	},
	1.5,
	'idle worker holds no snapshot and no lock');
ok($quiet, 'between refreshes backend_xmin/backend_xid are NULL and no locks are held');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks WHERE pid = $pid AND locktype = 'relation'"),
	'0',
	'idle worker holds no relation lock');
ok( $node->safe_psql('postgres',
		"SELECT coalesce(query, '') <> '' FROM pg_stat_activity WHERE pid = $pid") eq 't',
	'idle worker still says what it does');

# --- Back to 1s: applied at once, not after the hour ----------------------

my $max_id = $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM refresh_history');
my $t0     = time();
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1s'; SELECT pg_reload_conf()");
my $took = wait_for($node, 'postgres',
	"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND id > $max_id");
ok(defined $took, 'refreshing resumes after reload back to 1s');
cmp_ok($took // 999, '<', 10, 'the shorter interval is applied at once (within 10s)');
is(worker_pid($node, 'postgres'), $pid, 'still the same worker pid');

# --- refresh_interval = 0: disabled, no new rows --------------------------

$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = 0; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT state FROM refresh_worker_status WHERE database = 'postgres'",
		'disabled'),
	'refresh_interval = 0 puts the worker in state disabled');
my $count_off = $node->safe_psql('postgres',
	"SELECT count(*) FROM refresh_history WHERE origin = 'worker'");
ok( stays_true(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM refresh_history WHERE origin = 'worker'") eq $count_off;
		},
		3.5,
		'no worker refresh while disabled'),
	'no new worker history rows while disabled (3.5s, several former intervals)');
is(worker_pid($node, 'postgres'), $pid, 'disabled worker keeps running, same pid');

$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1s'; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) > $count_off FROM refresh_history WHERE origin = 'worker'"),
	're-enabling resumes refreshing');

# --- Two databases: one worker each, both refresh --------------------------

$node->safe_psql('postgres', 'CREATE DATABASE second');
$node->safe_psql('second',   'CREATE EXTENSION s3scan_jobs');
my $job2 = add_job($node, 'second', '22222222-2222-2222-2222-222222222222', 5, 1);
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.database = 'postgres, second'; SELECT pg_reload_conf()");

ok( defined wait_for(
		$node, 'postgres',
		"SELECT string_agg(datname::text, ',' ORDER BY datname) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'",
		'postgres,second'),
	'a list of two databases gives one worker in each');
ok( defined wait_for(
		$node, 'second',
		"SELECT total_objects FROM job_progress WHERE job_id = '$job2'", '5'),
	'the second database is refreshed by its worker');
my $job3 = add_job($node, 'second', '33333333-3333-3333-3333-333333333333', 2, 0);
ok( defined wait_for(
		$node, 'second',
		"SELECT total_objects FROM job_progress WHERE job_id = '$job3'", '2'),
	'a change in the second database is refreshed too');
ok( defined wait_for(
		$node, 'second',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the second database records worker refreshes');
my $before_pg = $node->safe_psql('postgres', 'SELECT max(id) FROM refresh_history');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND id > $before_pg"),
	'the first database keeps being refreshed');
is(worker_pid($node, 'postgres'), $pid, 'adding a database does not restart the first worker');
my $pid2 = worker_pid($node, 'second');
my $st2  = status_row($node, 'second', 'second');
ok($st2 && defined $st2->{pid} && $st2->{pid} eq $pid2,
	'refresh_worker_status shows the second worker');
ok(status_row($node, 'second', 'postgres'),
	'refresh_worker_status shows every configured database');
ok( stays_true(
		sub { scalar(worker_pids($node, 'second')) == 1 && scalar(worker_pids($node, 'postgres')) == 1 },
		1.5,
		'one worker per database'),
	'never two workers for one database');

# Removing a database from the list stops its worker (reload applies it).
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.database = 'postgres'; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE' AND datname = 'second'",
		'0'),
	'removing a database from the list stops its worker');
is(worker_pid($node, 'postgres'), $pid, 'the remaining worker keeps its pid');

# --- History bounded by history_limit --------------------------------------

ok( defined wait_for(
		$node, 'postgres', "SELECT count(*) > 6 FROM refresh_history"),
	'more history rows than the limit about to be set');
my $max_before = $node->safe_psql('postgres', 'SELECT max(id) FROM refresh_history');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.history_limit = 5; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) = 5 FROM refresh_history WHERE id > $max_before"),
	'worker keeps inserting after the limit is set');
is($node->safe_psql('postgres', 'SELECT count(*) FROM refresh_history'),
	'5', 'history pruned to history_limit rows');
is( $node->safe_psql(
		'postgres', "SELECT min(id) > $max_before FROM refresh_history"),
	't',
	'pruning keeps the newest rows');
my $max_now = $node->safe_psql('postgres', 'SELECT max(id) FROM refresh_history');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 3 FROM refresh_history WHERE id > $max_now"),
	'more refreshes after pruning');
is($node->safe_psql('postgres', 'SELECT count(*) FROM refresh_history'),
	'5', 'history stays at history_limit rows');

# Nothing crashed along the way.
ok(!$node->log_contains('terminating any other active server processes'),
	'no crash-restart of the cluster');

$node->stop;
done_testing();
