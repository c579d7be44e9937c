# The refresh worker's memory stays bounded over thousands of refreshes: PostgreSQL's caches grow
# with every REFRESH ... CONCURRENTLY (about 10 KB a refresh), so past s3scan_jobs.worker_memory_limit
# the worker hands its database to a fresh process, which goes on refreshing at once. Sub-second
# intervals are honoured ('10ms'), a too small one is refused at reload, 0 turns refreshing off.
# Memory is read as the server reads it: pg_log_backend_memory_contexts()' "Grand total".
# A writer commits a change to a job every few milliseconds meanwhile: with nothing changed a pass
# skips its REFRESH ('unchanged'), and the refreshes counted here are real ones.

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

# Real refreshes by the worker after history id $id, at least $n.
sub refreshed_since
{
	my ($id, $n) = @_;
	return "SELECT count(*) >= $n FROM refresh_history WHERE id > $id AND origin = 'worker' AND outcome = 'refreshed'";
}

# The writer: a change to a job, committed, every 5 ms, until told to stop (at most 10 minutes).
$node->safe_psql('mem', 'CREATE TABLE tap_writer_stop (stop boolean)');
my $writer = $node->background_psql('mem');
$writer->query_until(qr/writing/, q{
\echo writing
DO $$
DECLARE
    until timestamptz := clock_timestamp() + interval '10 minutes';
BEGIN
    WHILE clock_timestamp() < until AND NOT EXISTS (SELECT FROM tap_writer_stop) LOOP
        UPDATE jobs SET updated_at = clock_timestamp() WHERE job_id = 'dddddddd-0000-4000-8000-000000000001';
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END
$$;
});

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

ok(defined wait_for($node, 'mem', refreshed_since(0, 50)), 'the worker refreshes every 10ms');
my $pid   = worker_pid($node, 'mem');
my $start = memory_of($pid);
ok($start, "the worker's memory after 50 refreshes: $start bytes");

# Without a limit it grows: a few hundred refreshes later it holds more.
my $n0 = refreshes();
ok(defined wait_for($node, 'mem', refreshed_since($n0, 400)), '400 more refreshes');
my $grown = memory_of($pid);
cmp_ok($grown, '>', $start, "without a limit the worker's memory grows ($start -> $grown bytes)");

# A limit 2 MB above what a fresh worker holds: over 2,000 refreshes it is recycled, and the
# database stays served.
my $limit_kb = int($start / 1024) + 2048;
my $offset   = log_size($node);
$node->safe_psql('postgres',
	"ALTER SYSTEM SET s3scan_jobs.worker_memory_limit = '${limit_kb}kB'; SELECT pg_reload_conf()");
my $n1 = refreshes();
ok(defined wait_for($node, 'mem', refreshed_since($n1, 2000), 't', 240),
	'2,000 more refreshes');
my @recycled = log_lines($node, $offset, qr/refresh worker for database "mem" recycled after \d+ refreshes: \d+ kB of memory/);
ok(@recycled >= 1, scalar(@recycled) . ' recycles logged') or diag(log_since($node, $offset));
my $now = worker_pid($node, 'mem');
isnt($now, $pid, 'a fresh process serves the database');
my $end = memory_of($now);
cmp_ok($end, '<=', $limit_kb * 1024 + 1024 * 1024, "its memory stays under the limit ($end bytes, limit $limit_kb kB)");
is( $node->safe_psql('mem',
		"SELECT count(*) FROM refresh_history WHERE id > $n1 AND outcome NOT IN ('refreshed', 'unchanged')"),
	'0', 'no pass of the run failed or was skipped');
note 'passes of the run by outcome: '
  . $node->safe_psql('mem',
	"SELECT string_agg(outcome || ' ' || n, ', ') FROM (SELECT outcome, count(*) AS n FROM refresh_history
	   WHERE id > $n1 GROUP BY outcome) s");
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
$node->safe_psql('mem', 'INSERT INTO tap_writer_stop VALUES (true)');
$writer->quit;

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
