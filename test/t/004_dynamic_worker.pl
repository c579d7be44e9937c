# Without shared_preload_libraries: refresh_worker_start() starts a dynamic
# refresh worker for the current database, a second call (even a
# concurrent one) returns the same pid, refresh_worker_stop() stops it,
# PUBLIC cannot call either, and running out of max_worker_processes gives
# a clear error with SQLSTATE 53000.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use Time::HiRes qw(time);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

# Exactly two background worker slots, both free: no logical replication
# launcher, no parallel query.
my $node = new_s3scan_node(
	'dynamic',
	conf => qq{
s3scan_jobs.refresh_interval = '1s'
max_worker_processes = 2
max_logical_replication_workers = 0
max_parallel_workers = 0
});
$node->start;
for my $db ('postgres', 'db2', 'db3')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db") if $db ne 'postgres';
	$node->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
}

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'the library is not preloaded');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'"),
	'0',
	'no refresh worker runs before it is started');

sub count_workers
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE' AND datname = '$db'"
	);
}

# --- start -----------------------------------------------------------------

my ($ret, $pid, $err) = psql_result($node, 'postgres', 'SELECT refresh_worker_start()');
is($ret, 0, 'refresh_worker_start() succeeds') or diag($err);
like($pid, qr/^\d+$/, "refresh_worker_start() returns a pid ($pid)");
ok( defined wait_for(
		$node, 'postgres',
		"SELECT backend_type || '|' || datname FROM pg_stat_activity WHERE pid = $pid",
		"$WORKER_TYPE|postgres"),
	'the pid is a refresh worker in pg_stat_activity, in this database');

my ($ret2, $pid2, $err2) = psql_result($node, 'postgres', 'SELECT refresh_worker_start()');
is($ret2, 0, 'a second refresh_worker_start() succeeds');
is($pid2, $pid, 'a second call returns the same pid');
like($err2, qr/NOTICE/, 'with a NOTICE') or diag($err2);
ok(stays_true(sub { count_workers('postgres') eq '1' }, 1.5, 'one worker'),
	'never two workers for one database');

ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the dynamic worker refreshes on its interval');
my $st = status_row($node, 'postgres', 'postgres');
ok($st, 'refresh_worker_status has a row for the database');
is($st->{pid},        $pid,  'status shows the worker pid');
is($st->{started_by}, 'sql', 'status says the worker was started by SQL');

# --- stop ------------------------------------------------------------------

($ret, my $stopped, $err) = psql_result($node, 'postgres', 'SELECT refresh_worker_stop()');
is($ret,     0,   'refresh_worker_stop() succeeds') or diag($err);
is($stopped, 't', 'refresh_worker_stop() returns true when it stopped a worker');
ok(defined wait_for($node, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid", '0'),
	'the worker process is gone');
is($node->safe_psql('postgres', 'SELECT refresh_worker_stop()'),
	'f', 'refresh_worker_stop() returns false when no worker runs');
ok(stays_true(sub { count_workers('postgres') eq '0' }, 2, 'no worker'),
	'a stopped worker is not restarted');

# --- concurrent starts never make two workers ------------------------------

my @psql = ($node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'),
	'-c', 'SELECT refresh_worker_start()');
for my $round (1 .. 3)
{
	my (@h, @out, @errs);
	for my $i (0 .. 1)
	{
		$out[$i] = '';
		$errs[$i] = '';
		$h[$i] = IPC::Run::start(\@psql, '>', \$out[$i], '2>', \$errs[$i],
			IPC::Run::timeout($WAIT_TIMEOUT));
	}
	$_->finish for @h;
	chomp @out;
	ok($out[0] =~ /^\d+$/ && $out[0] eq $out[1],
		"round $round: two concurrent starts return the same pid ($out[0] / $out[1])")
	  or diag("stderr: $errs[0] / $errs[1]");
	ok(stays_true(sub { count_workers('postgres') eq '1' }, 1, 'one worker'),
		"round $round: exactly one worker");
	is($node->safe_psql('postgres', 'SELECT refresh_worker_stop()'), 't', "round $round: stopped");
	ok(defined wait_for($node, 'postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'", '0'),
		"round $round: worker gone");
}

# --- PUBLIC cannot start or stop a worker ----------------------------------

$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my $plain = $node->connstr('postgres') . ' user=plain';
for my $f ('refresh_worker_start', 'refresh_worker_stop')
{
	my ($r, $o, $e) = psql_result($node, 'postgres', "SELECT $f()", connstr => $plain);
	isnt($r, 0, "a plain role cannot call $f()");
	like($e, qr/42501: permission denied for function $f/, "$f(): permission denied (42501)");
}
is(count_workers('postgres'), '0', 'the plain role started nothing');

# --- max_worker_processes exhausted: SQLSTATE 53000 -------------------------

my ($p1) = (psql_result($node, 'postgres', 'SELECT refresh_worker_start()'))[1];
my ($p2) = (psql_result($node, 'db2',      'SELECT refresh_worker_start()'))[1];
like($p1, qr/^\d+$/, 'worker started in postgres (slot 1 of 2)');
like($p2, qr/^\d+$/, 'worker started in db2 (slot 2 of 2)');
isnt($p1, $p2, 'two databases, two workers');

my ($r3, $o3, $e3) = psql_result($node, 'db3', 'SELECT refresh_worker_start()');
isnt($r3, 0, 'starting a third worker fails when no slot is free');
like($e3, qr/ERROR:\s+53000:/, 'the error has SQLSTATE 53000 (insufficient_resources)');
like($e3, qr/max_worker_processes|background worker/i, 'the error says what ran out')
  or diag($e3);
is(count_workers('db3'), '0', 'no worker for db3');
is(count_workers('postgres') . count_workers('db2'), '11', 'the running workers are unaffected');

# Freeing a slot makes the start work.
is($node->safe_psql('db2', 'SELECT refresh_worker_stop()'), 't', 'stop the worker of db2');
my $p3;
ok( defined wait_for_cond(
		sub {
			my ($r, $o) = psql_result($node, 'db3', 'SELECT refresh_worker_start()');
			$p3 = $o if $r == 0;
			return $r == 0;
		},
		20,
		'start in db3 after a slot is freed'),
	'with a free slot the start in db3 succeeds');
ok( defined wait_for(
		$node, 'postgres',
		"SELECT datname FROM pg_stat_activity WHERE pid = " . ($p3 // 0), 'db3'),
	'the db3 worker runs');

$node->stop;
done_testing();
