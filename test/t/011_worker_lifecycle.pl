# The refresh workers' life around the things people do to them and to their databases:
#  - pg_cancel_backend() of the idle launcher or an idle worker does nothing; a cancel during a
#    refresh cancels that refresh only (recorded as failed), the worker lives on;
#  - refresh_worker_stop() racing refresh_worker_start() never leaves a database unstartable,
#    and a start never waits 30 s;
#  - DROP DATABASE, ALTER DATABASE ... RENAME, CREATE DATABASE ... TEMPLATE of a served database
#    work at once, as without the extension (also WITH (FORCE) by a non-superuser owner); the
#    worker of a database still served comes back;
#  - an unquoted name in s3scan_jobs.database that only matches a database in another case gets a
#    warning with the hint to quote it; quoted, it is served.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use Time::HiRes qw(time usleep);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node(
	'lifecycle',
	preload => 1,
	conf    => "s3scan_jobs.database = 'scans, Upper'\ns3scan_jobs.refresh_interval = '1s'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE ROLE scan_owner LOGIN CREATEDB;
CREATE DATABASE scans OWNER scan_owner;
CREATE DATABASE dyn;
CREATE DATABASE "Upper";
});
$node->safe_psql($_, 'CREATE EXTENSION s3scan_jobs') for qw(postgres scans dyn Upper);
add_job($node, 'scans', 'cccccccc-0000-4000-8000-000000000001', 20, 2);

sub launcher_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = '$LAUNCHER_TYPE'");
}
ok(defined wait_for($node, 'postgres', "SELECT state = 'idle' FROM refresh_worker_status WHERE database = 'scans'"),
	'the worker of scans is idle');

# --- cancel ------------------------------------------------------------------------------------

# Idle for certain: no refresh due for an hour and no folds (a cancel that lands in a pass cancels
# that pass, which is right, and at a 1 s interval with folds every 100 ms it sometimes did).
$node->safe_psql('postgres', q{
ALTER SYSTEM SET s3scan_jobs.refresh_interval = '1h';
ALTER SYSTEM SET s3scan_jobs.fold_interval = 0;
SELECT pg_reload_conf();
});
ok( defined wait_for(
		$node, 'postgres',
		"SELECT state = 'idle' AND next_refresh_due > now() + interval '30 min'
		   FROM refresh_worker_status WHERE database = 'scans'"),
	'the worker of scans has nothing due for an hour');
my $launcher = launcher_pid();
my $worker   = worker_pid($node, 'scans');
my $offset   = log_size($node);
$node->safe_psql('postgres', "SELECT pg_cancel_backend($launcher), pg_cancel_backend($worker)");
ok( stays_true(
		sub { launcher_pid() eq $launcher && (worker_pid($node, 'scans') // 0) == $worker }, 3,
		'launcher and worker keep their pids'),
	'a cancel of the idle launcher and the idle worker does nothing');
is(scalar(log_lines($node, $offset, qr/exited with exit code|canceling statement/)), 0,
	'no exit and no cancel in the log');
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET s3scan_jobs.refresh_interval;
ALTER SYSTEM RESET s3scan_jobs.fold_interval;
SELECT pg_reload_conf();
});

# A cancel during a refresh: the refresh waits for a lock held here, the cancel lands on it.
my $locker = $node->background_psql('scans');
$locker->query_safe('BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $worker"),
	'the worker waits in a refresh');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($worker)");
ok( defined wait_for(
		$node, 'scans',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'failed'
		   AND error = 'canceling statement due to user request'"),
	'the cancelled refresh is recorded as failed');
my $cancelled = $node->safe_psql('scans', "SELECT max(id) FROM refresh_history WHERE outcome = 'failed'");
$locker->query_safe('COMMIT');
$locker->quit;
is(worker_pid($node, 'scans'), $worker, 'the worker lives on after the cancel');
# (a failed pass makes the next one refresh, whatever the count of changes says)
ok( defined wait_for(
		$node, 'scans',
		"SELECT outcome FROM refresh_history WHERE origin = 'worker' AND id > $cancelled ORDER BY id LIMIT 1",
		'refreshed'),
	'and refreshes again');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT consecutive_failures = 0 AND last_refresh_outcome IN ('refreshed', 'unchanged')
		   FROM refresh_worker_status WHERE database = 'scans'"),
	'refresh_worker_status shows no failure since');

# --- refresh_worker_stop() racing refresh_worker_start() -------------------------------------------

my @psql = ($node->installed_command('psql'), '-XAtq', '-d', $node->connstr('dyn'));
my $slow_starts = 0;
for my $round (1 .. 20)
{
	my ($out1, $err1, $out2, $err2) = ('', '', '', '');
	my $started = time();
	my $h1 = IPC::Run::start([ @psql, '-c', 'SELECT refresh_worker_start()' ], '>', \$out1, '2>', \$err1);
	usleep(int(rand(30_000)));
	my $h2 = IPC::Run::start([ @psql, '-c', 'SELECT refresh_worker_stop()' ], '>', \$out2, '2>', \$err2);
	$h1->finish;
	$h2->finish;
	$slow_starts++ if time() - $started > 10;
	# Whatever the race gave, a plain start works now, at once.
	my $t0 = time();
	my ($ret, $pid, $err) = psql_result($node, 'dyn', 'SELECT refresh_worker_start()', timeout => 20);
	if ($ret != 0 || $pid !~ /^\d+$/ || time() - $t0 > 10)
	{
		fail("round $round: refresh_worker_start() after the race") or diag("$ret $pid $err; race: $err1 $err2");
		last;
	}
	$node->safe_psql('dyn', 'SELECT refresh_worker_stop()');
}
is($slow_starts, 0, 'no start racing a stop waits for long');
my ($ret, $pid, $err) = psql_result($node, 'dyn', 'SELECT refresh_worker_start()', timeout => 20);
like($pid, qr/^\d+$/, 'after 20 races, refresh_worker_start() starts a worker') or diag($err);
$node->safe_psql('dyn', 'SELECT refresh_worker_stop()');

# --- commands that need a database without connections --------------------------------------------

sub timed
{
	my ($db, $sql, %opts) = @_;
	my $t0 = time();
	my ($r, $o, $e) = psql_result($node, $db, $sql, %opts);
	return ($r, time() - $t0, $e);
}

ok(defined wait_for($node, 'postgres', "SELECT pid IS NOT NULL FROM refresh_worker_status WHERE database = 'scans'"),
	'scans is served');
my ($r, $secs, $e) = timed('postgres', 'ALTER DATABASE scans RENAME TO scans_renamed');
is($r, 0, 'ALTER DATABASE ... RENAME of a served database succeeds') or diag($e);
cmp_ok($secs, '<', 4, "at once ($secs s), not after the 5 s PostgreSQL waits for other sessions");
($r, $secs, $e) = timed('postgres', 'ALTER DATABASE scans_renamed RENAME TO scans');
is($r, 0, 'and back');
ok(defined wait_for($node, 'postgres', "SELECT pid IS NOT NULL FROM refresh_worker_status WHERE database = 'scans'"),
	'the worker of scans is back');

($r, $secs, $e) = timed('postgres', 'CREATE DATABASE scans_copy TEMPLATE scans');
is($r, 0, 'CREATE DATABASE ... TEMPLATE a served database succeeds') or diag($e);
cmp_ok($secs, '<', 4, "at once ($secs s)");
ok(defined wait_for($node, 'postgres', "SELECT pid IS NOT NULL FROM refresh_worker_status WHERE database = 'scans'"),
	'the worker of scans is back after the copy');
is($node->safe_psql('scans_copy', 'SELECT count(*) FROM job_objects'), '20', 'the copy has the rows');

# DROP DATABASE, plain, of a served database (the copy, served from now on)
$node->safe_psql('postgres', "ALTER SYSTEM SET s3scan_jobs.database = 'scans, Upper, scans_copy'; SELECT pg_reload_conf()");
ok(defined wait_for($node, 'postgres', "SELECT pid IS NOT NULL FROM refresh_worker_status WHERE database = 'scans_copy'"),
	'scans_copy is served');
($r, $secs, $e) = timed('postgres', 'DROP DATABASE scans_copy');
is($r, 0, 'plain DROP DATABASE of a served database succeeds') or diag($e);
cmp_ok($secs, '<', 4, "at once ($secs s)");
ok(defined wait_for($node, 'postgres', "SELECT state FROM refresh_worker_status WHERE database = 'scans_copy'", 'database missing'),
	'its status says database missing');

# DROP DATABASE ... WITH (FORCE) by its owner, who is not a superuser (the worker is a superuser
# process, which FORCE may not terminate)
ok(defined wait_for($node, 'postgres', "SELECT pid IS NOT NULL FROM refresh_worker_status WHERE database = 'scans'"),
	'scans is served');
($r, $secs, $e) = timed('postgres', 'DROP DATABASE scans WITH (FORCE)', extra_params => [ '-U', 'scan_owner' ]);
is($r, 0, 'DROP DATABASE ... WITH (FORCE) by a non-superuser owner succeeds') or diag($e);
ok(defined wait_for($node, 'postgres', "SELECT state FROM refresh_worker_status WHERE database = 'scans'", 'database missing'),
	'scans: database missing');

# A role that may not drop the database does not stop its worker either.
my $upper = worker_pid($node, 'Upper');
is($upper, undef, 'Upper (unquoted, folded to upper) is not served');

# --- names folded to lower case ------------------------------------------------------------------

ok( defined wait_for_cond(
		sub { scalar(log_lines($node, 0, qr/WARNING:  database "upper" named in s3scan_jobs.database does not exist/)) > 0 }),
	'the launcher warns about the folded name');
ok(scalar(log_lines($node, 0, qr/HINT:  .*write it double-quoted: s3scan_jobs.database = '"Upper"'/)) > 0,
	'with the hint to quote it');
$node->safe_psql('postgres', q{ALTER SYSTEM SET s3scan_jobs.database = '"Upper"'; SELECT pg_reload_conf()});
ok(defined wait_for_cond(sub { defined worker_pid($node, 'Upper') }), 'quoted, "Upper" is served');

$node->stop;
done_testing();
