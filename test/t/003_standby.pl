# Hot standby: with the same preload configuration as its primary, a
# streaming standby runs no refresh worker and does not flood its log;
# after promotion, the promoted node starts refreshing.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $primary = new_s3scan_node(
	'primary',
	allows_streaming => 1,
	preload          => 1,
	conf             => qq{
s3scan_jobs.database = 'postgres'
s3scan_jobs.refresh_interval = '1s'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION s3scan_jobs');
my $job = add_job($primary, 'postgres', '44444444-4444-4444-4444-444444444444', 4, 1);
ok( defined wait_for(
		$primary, 'postgres',
		"SELECT total_objects FROM job_progress WHERE job_id = '$job'", '4'),
	'the primary refreshes');

$primary->backup('bkp');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bkp', has_streaming => 1);
my $standby_log_start = 0;
$standby->start;

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	's3scan_jobs', 'the standby preloads the library too');

# The primary keeps refreshing; its history streams to the standby.
my $maxh = $primary->safe_psql('postgres', 'SELECT max(id) FROM refresh_history');
ok( defined wait_for(
		$primary, 'postgres',
		"SELECT count(*) >= 2 FROM refresh_history WHERE origin = 'worker' AND id > $maxh"),
	'the primary keeps refreshing');
$primary->wait_for_catchup($standby);
ok( $standby->safe_psql('postgres',
		"SELECT count(*) > 0 FROM refresh_history WHERE id > $maxh") eq 't',
	'worker history replicates to the standby');

# No refresh worker on the standby, and no error flood in its log.
ok( stays_true(
		sub {
			$standby->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'")
			  eq '0';
		},
		4,
		'no refresh worker on the standby'),
	'no refresh worker runs on the hot standby (4 s, several intervals)');
# The walreceiver's own messages (the primary going away, promotion) are
# not the extension's business.
sub server_errors
{
	my ($n, $off) = @_;
	return grep { !/\] walreceiver / } log_lines($n, $off, qr/\b(ERROR|FATAL|PANIC):/);
}
my @errors = server_errors($standby, $standby_log_start);
is(scalar(@errors), 0, 'no errors in the standby log') or diag(join("\n", @errors));
my @worker_lines = log_lines($standby, $standby_log_start, qr/s3scan/);
cmp_ok(scalar(@worker_lines), '<=', 3, 'the standby log is not flooded by the extension')
  or diag(join("\n", @worker_lines));

# Promote: refreshing starts on the promoted node.
$primary->wait_for_catchup($standby);
$maxh = $standby->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM refresh_history');
$primary->stop;
my $t0 = time();
$standby->promote;
ok( defined wait_for(
		$standby, 'postgres', 'SELECT pg_is_in_recovery()', 'f'),
	'the standby is promoted');
my $took = wait_for(
	$standby, 'postgres',
	"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed' AND id > $maxh"
);
ok(defined $took, 'after promotion the promoted node records worker refreshes');
cmp_ok(time() - $t0, '<', 30, 'refreshing starts soon after promotion');
is( $standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'"),
	'1',
	'one refresh worker on the promoted node');
my $job2 = add_job($standby, 'postgres', '55555555-5555-5555-5555-555555555555', 3, 0);
ok( defined wait_for(
		$standby, 'postgres',
		"SELECT total_objects FROM job_progress WHERE job_id = '$job2'", '3'),
	'the promoted node refreshes job_progress with new jobs');
@errors = server_errors($standby, $standby_log_start);
is(scalar(@errors), 0, 'no errors in the promoted node log') or diag(join("\n", @errors));

$standby->stop;
done_testing();
