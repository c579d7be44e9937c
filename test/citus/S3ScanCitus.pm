# Helpers of the Citus suite (test/citus/NNN_topic.pl, run by `test/run-tests.sh citus`): a
# coordinator and two worker nodes on this machine, each a PostgreSQL::Test::Cluster node that
# preloads citus and s3scan_jobs, and the recount the tests compare the extension's answers with.
# Citus itself is built and installed by test/lib.sh (ensure_citus) before the suite runs.

package S3ScanCitus;

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use FindBin;
use lib "$FindBin::RealBin/../t";
use S3ScanTAP;

our @EXPORT = qw(new_citus_cluster add_workers recount_differences job_uuid task_count);

# Starts a coordinator and $opts{workers} (default 2) worker nodes, each with CREATE EXTENSION
# citus in database postgres, the refresh worker serving postgres (refresh and folds every
# $opts{interval}, default 1s), and the coordinator registered. The workers are added to the
# cluster unless $opts{add_workers} is 0. Returns (coordinator, workers...).
sub new_citus_cluster
{
	my ($name, %opts) = @_;
	my $interval = $opts{interval} // '1s';
	my @nodes;
	for my $role ('coordinator', map { "worker$_" } 1 .. ($opts{workers} // 2))
	{
		my $node = new_s3scan_node(
			"${name}_$role",
			preload => 'citus,s3scan_jobs',
			conf    => "max_prepared_transactions = 100\n"
			  . "wal_level = logical\n"
			  . "max_wal_senders = 10\n"
			  . "max_replication_slots = 10\n"
			  . "citus.log_distributed_deadlock_detection = on\n"
			  . "max_connections = 100\n"
			  . "s3scan_jobs.database = 'postgres'\n"
			  . "s3scan_jobs.refresh_interval = '$interval'\n"
			  . ($opts{conf} // ''));
		# (Citus connects to its own node by citus.local_hostname, localhost by default: the nodes
		# listen on their Unix socket only.)
		$node->append_conf('postgresql.conf', "citus.local_hostname = '" . $node->host . "'\n");
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION citus');
		push @nodes, $node;
	}
	my ($coordinator, @workers) = @nodes;
	$coordinator->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('" . $coordinator->host . "', " . $coordinator->port . ")");
	add_workers($coordinator, @workers) unless defined $opts{add_workers} && !$opts{add_workers};
	return @nodes;
}

sub add_workers
{
	my ($coordinator, @workers) = @_;
	$coordinator->safe_psql('postgres', "SELECT citus_add_node('" . $_->host . "', " . $_->port . ")")
	  for @workers;
}

# A job id from a number.
sub job_uuid
{
	my ($n) = @_;
	return sprintf('00000000-0000-4000-8000-%012d', $n);
}

# The jobs whose job_status(id, true) differs from a recount of the base tables (one line per job,
# empty when every job is exact), both read on $node, in one transaction (REPEATABLE READ: one
# snapshot of the coordinator, and Citus reads each worker's shards in one snapshot too; with
# writers running, compare after they stop).
sub recount_differences
{
	my ($node) = @_;
	# (job_status() reads the shards with queries of its own, which Citus does not run from
	# inside another distributed query: the ids come first, as a literal.)
	my $ids = $node->safe_psql('postgres', 'SELECT string_agg(job_id::text, \',\') FROM jobs');
	my $out = $node->safe_psql('postgres', qq{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT 'counted', j.job_id,
       concat_ws(' ', COALESCE(o.total, 0), COALESCE(o.queued, 0), COALESCE(o.processing, 0),
                 COALESCE(o.succeeded, 0), COALESCE(o.failed, 0), COALESCE(f.findings, 0))
FROM (SELECT job_id FROM jobs) j
LEFT JOIN (SELECT job_id, count(*) AS total,
                  count(*) FILTER (WHERE status = 'queued') AS queued,
                  count(*) FILTER (WHERE status = 'processing') AS processing,
                  count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                  count(*) FILTER (WHERE status = 'failed') AS failed
           FROM job_objects GROUP BY job_id) o ON o.job_id = j.job_id
LEFT JOIN (SELECT job_id, count(*) AS findings FROM findings GROUP BY job_id) f ON f.job_id = j.job_id;
SELECT 'status', s.job_id,
       concat_ws(' ', s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
                 s.failed_count, s.total_findings)
FROM unnest('{$ids}'::uuid[]) i CROSS JOIN LATERAL job_status(i, true) s;
COMMIT;
}, on_error_die => 1);
	my (%counted, %status);
	for my $line (split /\n/, $out)
	{
		my ($what, $job, $counts) = split /\|/, $line;
		next unless defined $counts;
		($what eq 'counted' ? \%counted : \%status)->{$job} = $counts;
	}
	my @differences;
	for my $job (sort keys %counted)
	{
		my $got = $status{$job} // 'missing';
		push @differences, "$job: counted $counted{$job}, job_status $got" if $got ne $counted{$job};
	}
	return join("\n", @differences);
}

# The task count of EXPLAIN $sql on $node (Citus's "Task Count: N"), or -1.
sub task_count
{
	my ($node, $sql) = @_;
	my $plan = $node->safe_psql('postgres', "EXPLAIN (COSTS OFF) $sql");
	return $plan =~ /Task Count: (\d+)/ ? $1 : -1;
}

1;
