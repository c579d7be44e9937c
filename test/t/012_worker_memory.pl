# The refresh worker's memory stays bounded over thousands of refreshes: PostgreSQL's caches grow
# with every REFRESH ... CONCURRENTLY (about 10 KB a refresh), so past s3scan_jobs.worker_memory_limit
# the worker hands its database to a fresh process, which goes on refreshing at once. Sub-second
# intervals are honoured ('10ms'), a too small one is refused at reload, 0 turns refreshing off.
# Memory is read as the server reads it: pg_log_backend_memory_contexts()' "Grand total".

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node(
	'memory',
	preload => 1,
	conf    => "s3scan_jobs.database = 'mem'\ns3scan_jobs.refresh_interval = '10ms'\n"
	  . "s3scan_jobs.worker_memory_limit = 0\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE mem');
$node->safe_psql('mem',      'CREATE EXTENSION s3scan_jobs');
add_job($node, 'mem', sprintf('dddddddd-0000-4000-8000-%012d', $_), 20, 2) for 1 .. 10;

sub refreshes { return $node->safe_psql('mem', "SELECT coalesce(max(id), 0) FROM refresh_history"); }

# The worker's memory, all contexts, in bytes.
sub memory_of
{
	my ($pid) = @_;
	my $offset = log_size($node);
	$node->safe_psql('mem', "SELECT pg_log_backend_memory_contexts($pid)");
	my $total;
	wait_for_cond(
		sub {
			my @l = log_lines($node, $offset, qr/\[$pid\].*Grand total: \d+ bytes/);
			($total) = $l[-1] =~ /Grand total: (\d+) bytes/ if @l;
			return defined $total;
		},
		30,
		"memory contexts of $pid");
	return $total;
}

ok(defined wait_for($node, 'mem', 'SELECT max(id) >= 50 FROM refresh_history'), 'the worker refreshes every 10ms');
my $pid   = worker_pid($node, 'mem');
my $start = memory_of($pid);
ok($start, "the worker's memory after 50 refreshes: $start bytes");

# Without a limit it grows: a few hundred refreshes later it holds more.
my $n0 = refreshes();
ok(defined wait_for($node, 'mem', "SELECT max(id) >= $n0 + 400 FROM refresh_history"), '400 more refreshes');
my $grown = memory_of($pid);
cmp_ok($grown, '>', $start, "without a limit the worker's memory grows ($start -> $grown bytes)");

# A limit 2 MB above what a fresh worker holds: over 2,000 refreshes it is recycled, and the
# database stays served.
my $limit_kb = int($start / 1024) + 2048;
my $offset   = log_size($node);
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = '${limit_kb}kB'; SELECT pg_reload_conf()");
my $n1 = refreshes();
ok(defined wait_for($node, 'mem', "SELECT max(id) >= $n1 + 2000 FROM refresh_history", 't', 240),
	'2,000 more refreshes');
my @recycled = log_lines($node, $offset, qr/refresh worker for database "mem" recycled after \d+ refreshes: \d+ kB of memory/);
ok(@recycled >= 1, scalar(@recycled) . ' recycles logged') or diag(log_since($node, $offset));
my $now = worker_pid($node, 'mem');
isnt($now, $pid, 'a fresh process serves the database');
my $end = memory_of($now);
cmp_ok($end, '<=', $limit_kb * 1024 + 1024 * 1024, "its memory stays under the limit ($end bytes, limit $limit_kb kB)");
is($node->safe_psql('mem', "SELECT count(*) FROM refresh_history WHERE id > $n1 AND outcome <> 'refreshed'"),
	'0', 'every refresh of the run refreshed');
my $gap = $node->safe_psql('mem', qq{
SELECT round(max(g)::numeric, 2) FROM (
  SELECT extract(epoch FROM started_at - lag(started_at) OVER (ORDER BY id)) AS g
  FROM refresh_history WHERE id > $n1) s});
cmp_ok($gap, '<', 3, "no refresh was missed for long across the recycles (largest gap ${gap}s)");

# A limit below what a fresh worker uses would make workers replace each other after every
# refresh: it is reported once and the worker keeps serving.
$offset = log_size($node);
$node->safe_psql('postgres', "ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = '1MB'; SELECT pg_reload_conf()");
ok( defined wait_for_cond(
		sub { scalar(log_lines($node, $offset, qr/worker_memory_limit \(1024 kB\) is below what a fresh refresh worker uses/)) > 0 }),
	'a limit below a fresh worker is reported');
my $kept = worker_pid($node, 'mem');
ok(stays_true(sub { (worker_pid($node, 'mem') // 0) == $kept }, 2, 'same worker'),
	'and the worker is not replaced after every refresh');

# A too small interval is refused at reload (the old one stays); 0 turns refreshing off.
$offset = log_size($node);
$node->safe_psql('postgres', "ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = '64MB'");
$node->append_conf('postgresql.conf', "s3scan_jobs.refresh_interval = '5ms'\n");
$node->reload;
ok( defined wait_for_cond(
		sub { scalar(log_lines($node, $offset, qr/invalid value for parameter "s3scan_jobs.refresh_interval"/)) > 0 }),
	"'5ms' is refused at reload");
is($node->safe_psql('mem', 'SHOW s3scan_jobs.refresh_interval'), '10ms', 'the interval stays 10ms');
$node->append_conf('postgresql.conf', "s3scan_jobs.refresh_interval = 0\n");
$node->reload;
ok(defined wait_for($node, 'mem', "SELECT state FROM refresh_worker_status WHERE database = 'mem'", 'disabled'),
	'0 turns refreshing off');

$node->stop;
done_testing();
