# Faults around the preloaded refresh worker, each with a real server and
# real signals: the extension missing, created later, and dropped while the
# worker runs; an error inside a refresh (lock timeout) caught, recorded,
# logged once and retried; SIGTERM (restarted within 10 s, no cluster
# restart); CREATE/DROP DATABASE never blocked by the worker; pg_ctl stop
# -m fast during a refresh; DROP DATABASE ... WITH (FORCE) of the worker's
# own database without a crash loop or a log flood.
#
# Database 'app' is served; database 'mon' has the extension only to read
# refresh_worker_status while 'app' has none.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node('faults', conf => "max_prepared_transactions = 2\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('postgres', 'CREATE DATABASE mon');
$node->safe_psql('mon',      'CREATE EXTENSION s3scan_jobs');
$node->stop;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 's3scan_jobs'
s3scan_jobs.database = 'app'
s3scan_jobs.refresh_interval = '1s'
});

my $errors_re = qr/\b(ERROR|FATAL|PANIC):/;
my $crash_re =
  qr/terminating any other active server processes|all server processes terminated/;

my $log_start = log_size($node);
$node->start;

sub app_state
{
	my $r = status_row($node, 'mon', 'app');
	return $r ? ($r->{state} // '') : '';
}

# --- Extension not created: the worker waits quietly ----------------------

ok( defined wait_for(
		$node, 'mon',
		"SELECT state FROM refresh_worker_status WHERE database = 'app'",
		'waiting for extension'),
	'without the extension the worker is in state waiting for extension');
my $waiting = status_row($node, 'mon', 'app');
ok( stays_true(
		sub {
			my $r = status_row($node, 'mon', 'app');
			return $r
			  && $r->{state} eq 'waiting for extension'
			  && ($r->{pid} // '') eq ($waiting->{pid} // '')
			  && !log_lines($node, $log_start, $errors_re);
		},
		3,
		'quiet wait for the extension'),
	'the waiting worker stays waiting, same pid, no ERROR/FATAL in the log');
is(scalar(log_lines($node, $log_start, $errors_re)),
	0, 'no error lines while the extension is missing');

# --- CREATE EXTENSION later: refreshing starts -----------------------------

$node->safe_psql('app', 'CREATE EXTENSION s3scan_jobs');
my $job = add_job($node, 'app', '33333333-3333-3333-3333-333333333333', 6, 2);
ok( defined wait_for(
		$node, 'app',
		"SELECT total_objects FROM job_progress WHERE job_id = '$job'", '6'),
	'after CREATE EXTENSION the worker refreshes job_progress');
ok( defined wait_for(
		$node, 'app',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'worker refreshes are recorded');
my $pid = worker_pid($node, 'app');
ok(defined $pid, 'the worker serving app is in pg_stat_activity');

# --- An error inside a refresh is caught, recorded, retried ----------------

my $reload_ts = $node->safe_psql('app',
	"ALTER SYSTEM SET lock_timeout = '200ms'; SELECT pg_reload_conf(); SELECT clock_timestamp()"
);
$reload_ts = (split /\n/, $reload_ts)[-1];
# Let the worker pick up the new lock_timeout: a refresh that starts well
# after the reload was sent runs with it.
ok( defined wait_for(
		$node, 'mon',
		"SELECT last_refresh_start > '$reload_ts'::timestamptz + interval '1.5 s'
		   FROM refresh_worker_status WHERE database = 'app'"),
	'worker refreshes after the lock_timeout reload');

my $log_fault = log_size($node);
my $locker    = $node->background_psql('app');
$locker->query_safe(
	'SET lock_timeout = 0; BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');

ok( defined wait_for(
		$node, 'mon',
		"SELECT consecutive_failures >= 2 AND last_refresh_outcome = 'failed'
		        AND last_error ~* 'lock timeout'
		   FROM refresh_worker_status WHERE database = 'app'"),
	'failing refreshes show in refresh_worker_status (last_error, consecutive_failures)');
ok( $node->safe_psql(
		'app',
		"SELECT count(*) >= 2 FROM refresh_history
		  WHERE origin = 'worker' AND outcome = 'failed' AND error ~* 'lock timeout'") eq 't',
	'failed refreshes are recorded in refresh_history with the error text');
is(worker_pid($node, 'app'), $pid, 'the worker survives refresh errors (same pid)');

# Backoff: retries come later than the interval, but never more than a few
# intervals later.  Six failures in a row: an uncapped doubling would wait
# 16-32 intervals by then.
ok( defined wait_for(
		$node, 'mon',
		"SELECT consecutive_failures >= 6 FROM refresh_worker_status WHERE database = 'app'"),
	'the worker keeps retrying while the lock is held');
my $gaps = $node->safe_psql(
	'app', q{
SELECT round(max(g)::numeric, 1), round((array_agg(g ORDER BY id DESC))[1]::numeric, 1) FROM (
  SELECT id, extract(epoch FROM started_at - lag(started_at) OVER (ORDER BY id)) AS g
  FROM refresh_history WHERE origin = 'worker' AND outcome = 'failed') s});
my ($max_gap, $last_gap) = split /\|/, $gaps;
cmp_ok($last_gap, '>=', 1.5, "retries back off beyond the 1s interval (last gap ${last_gap}s)");
cmp_ok($max_gap, '<=', 10.5, "the backoff is capped at a few intervals (largest gap ${max_gap}s)");
is( $node->safe_psql(
		'mon',
		"SELECT next_refresh_due <= last_refresh_start + interval '10.5 seconds'
		   FROM refresh_worker_status WHERE database = 'app'"),
	't',
	'the next retry is due within a few intervals');
is(worker_pid($node, 'app'), $pid, 'still the same worker after repeated failures');

$locker->query_safe('COMMIT');
ok( defined wait_for(
		$node, 'mon',
		"SELECT consecutive_failures = 0 AND last_refresh_outcome IN ('refreshed', 'unchanged')
		   FROM refresh_worker_status WHERE database = 'app'"),
	'after the cause goes away refreshes succeed and consecutive_failures is 0');
# (a failed pass makes the next one refresh, whatever the count of changes says)
is( $node->safe_psql(
		'app',
		"SELECT outcome FROM refresh_history WHERE origin = 'worker'
		   AND id > (SELECT max(id) FROM refresh_history WHERE outcome = 'failed') ORDER BY id LIMIT 1"),
	'refreshed',
	'the first pass after the failures refreshes');
is(worker_pid($node, 'app'), $pid, 'still the same worker after recovering');

my $failures = $node->safe_psql('app',
	"SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND outcome = 'failed'");
my @fault_lines = log_lines($node, $log_fault, qr/lock timeout/);
cmp_ok(scalar(@fault_lines), '>=', 1, 'the refresh error is logged');
cmp_ok(scalar(@fault_lines), '<=', 2 * $failures,
	"the error is logged about once per failure ("
	  . scalar(@fault_lines)
	  . " lines for $failures failures), not flooded");

$node->safe_psql('app', 'ALTER SYSTEM RESET lock_timeout; SELECT pg_reload_conf()');
$locker->quit;

# --- SIGTERM: the worker exits and is restarted; the cluster is not ---------

my $bystander     = $node->background_psql('mon');
my $bystander_pid = $bystander->query_safe('SELECT pg_backend_pid()');
my $log_term      = log_size($node);
my $t0            = time();
ok(kill('TERM', $pid), "SIGTERM sent to worker $pid");
my $new_pid;
my $took = wait_for_cond(
	sub {
		my $p = worker_pid($node, 'app');
		$new_pid = $p if defined $p && $p ne $pid;
		return defined $new_pid;
	},
	$WAIT_TIMEOUT,
	'a new worker pid after SIGTERM');
ok(defined $took, "a new worker appears after SIGTERM (pid " . ($new_pid // 'none') . ")");
cmp_ok($took // 999, '<', 10, 'restarted within 10 s');
is( $node->safe_psql('mon', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid"),
	'0', 'the old worker process is gone');
is($bystander->query_safe('SELECT pg_backend_pid()'),
	$bystander_pid, 'another session survives the worker\'s exit');
ok(!$node->log_contains($crash_re, $log_term),
	'killing the worker does not make the postmaster restart the cluster');
# (a new worker's first pass refreshes, even with nothing changed; it may come before this looks)
ok( defined wait_for(
		$node, 'app',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'
		   AND started_at >= (SELECT backend_start FROM pg_stat_activity WHERE pid = $new_pid)"
	),
	'the restarted worker refreshes');
$bystander->quit;
$pid = $new_pid;

# --- DROP EXTENSION while the worker runs ----------------------------------

my $log_drop = log_size($node);
$t0 = time();
my ($ret, $out, $err) = psql_result($node, 'app', 'DROP EXTENSION s3scan_jobs');
my $drop_took = time() - $t0;
is($ret, 0, 'DROP EXTENSION succeeds while the worker runs') or diag($err);
cmp_ok($drop_took, '<', 10, sprintf('DROP EXTENSION does not hang (%.1fs)', $drop_took));
ok( defined wait_for(
		$node, 'mon',
		"SELECT state FROM refresh_worker_status WHERE database = 'app'",
		'waiting for extension'),
	'after DROP EXTENSION the worker goes back to waiting');
# At most one error from a refresh racing with the drop, then quiet.
my @drop_errors = log_lines($node, $log_drop, $errors_re);
cmp_ok(scalar(@drop_errors), '<=', 1, 'dropping the extension logs at most one error')
  or diag(join("\n", @drop_errors));
my $log_wait = log_size($node);
ok( stays_true(
		sub { app_state() eq 'waiting for extension' && !log_lines($node, $log_wait, $errors_re) },
		3,
		'quiet wait after DROP EXTENSION'),
	'the worker waits quietly after DROP EXTENSION');

$node->safe_psql('app', 'CREATE EXTENSION s3scan_jobs');
ok( defined wait_for(
		$node, 'app',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the worker resumes after the extension is created again');
$pid = worker_pid($node, 'app');

# --- CREATE / DROP DATABASE of another database is not blocked --------------
# A long interval keeps the worker asleep in its latch wait, where only a
# worker that handles interrupts lets DROP DATABASE's barrier through.

$node->safe_psql('app',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1h'; SELECT pg_reload_conf()");
ok( defined wait_for(
		$node, 'mon',
		"SELECT state = 'idle' AND next_refresh_due > now() + interval '50 minutes'
		   FROM refresh_worker_status WHERE database = 'app'"),
	'worker asleep with a 1h interval');
for my $sql ('CREATE DATABASE scratch', 'DROP DATABASE scratch')
{
	$t0 = time();
	($ret, $out, $err) = psql_result($node, 'postgres', $sql);
	my $took_db = time() - $t0;
	is($ret, 0, "$sql succeeds while the worker runs") or diag($err);
	cmp_ok($took_db, '<', 10, sprintf('%s completes promptly (%.1fs)', $sql, $took_db));
}
is(worker_pid($node, 'app'), $pid, 'the worker is unaffected');
$node->safe_psql('app',
	"ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1s'; SELECT pg_reload_conf()");

# --- pg_ctl stop -m fast during a refresh ----------------------------------
# A prepared transaction holds ACCESS EXCLUSIVE on jobs (which the refresh reads): it survives
# the shutdown, so only the worker's own handling of SIGTERM can end its
# refresh, which waits on that lock.

$node->safe_psql('app',
	"BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 's3scan_hold'"
);
ok( defined wait_for(
		$node, 'app',
		"SELECT count(*) FROM pg_stat_activity
		  WHERE backend_type = '$WORKER_TYPE' AND datname = 'app' AND wait_event_type = 'Lock'",
		'1'),
	'the worker is inside a refresh, waiting for a lock');
is(app_state(), 'refreshing', 'refresh_worker_status says refreshing');
$t0 = time();
my $stopped = $node->stop('fast', fail_ok => 1);
my $stop_took = time() - $t0;
ok($stopped, 'pg_ctl stop -m fast succeeds during a refresh');
cmp_ok($stop_took, '<', 10, sprintf('the server stops promptly (%.1fs)', $stop_took));

$node->start;
$node->safe_psql('app', "ROLLBACK PREPARED 's3scan_hold'");
# (the new worker's first refresh, which waited for the prepared lock, may be over already)
ok( defined wait_for(
		$node, 'app',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'
		   AND started_at >= (SELECT backend_start FROM pg_stat_activity
		                       WHERE backend_type = '$WORKER_TYPE' AND datname = 'app')"
	),
	'after the restart the worker refreshes again');

# --- DROP DATABASE ... WITH (FORCE) of the worker's own database ------------

my $log_dropdb = log_size($node);
$t0 = time();
($ret, $out, $err) = psql_result($node, 'mon', 'DROP DATABASE app WITH (FORCE)');
my $dropdb_took = time() - $t0;
is($ret, 0, 'DROP DATABASE app WITH (FORCE) succeeds') or diag($err);
cmp_ok($dropdb_took, '<', 10, sprintf('and completes promptly (%.1fs)', $dropdb_took));
ok( defined wait_for(
		$node, 'mon',
		"SELECT state || '|' || coalesce(pid::text, 'null') FROM refresh_worker_status WHERE database = 'app'",
		'database missing|null'),
	'the status shows the database missing and no worker running');
ok( stays_true(
		sub { app_state() eq 'database missing' && !worker_pids($node, 'app') },
		6,
		'database stays missing, no worker'),
	'no worker is restarted for the dropped database');
my @dropdb_errors = log_lines($node, $log_dropdb, $errors_re);
cmp_ok(scalar(@dropdb_errors), '<=', 2,
	'no crash loop: at most a couple of error lines over 6 s after the drop')
  or diag(join("\n", @dropdb_errors));
ok(!$node->log_contains($crash_re, $log_start), 'the cluster never crash-restarted');
is($node->safe_psql('mon', 'SELECT 1'), '1', 'the server is still up');

$node->stop;
done_testing();
