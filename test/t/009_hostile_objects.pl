# Objects planted by a hostile, non-superuser database owner never run as the superuser.
#
# On PostgreSQL 15 the database owner owns schema public. Here that owner plants, before a
# superuser runs CREATE EXTENSION, an operator for every likely operator name and type pair
# (+ - * / = <> < > <= >= between bigint, integer, numeric, double precision, text, uuid,
# timestamptz), functions and aggregates named like the built-ins the extension calls, each
# recording who ran it. Then everything runs: CREATE EXTENSION, the refresh worker (its refreshes
# and its 'unchanged' passes), refresh_job_progress(), a person's REFRESH [CONCURRENTLY],
# job_status both ways, every view, the counters' triggers (TRUNCATE and the replica role too),
# fold, verify and repair, the clients' statements. Then the owner puts a schema of planted
# objects first on the database's search_path (ALTER DATABASE ... SET), and the superuser's own
# (ALTER ROLE ... SET), and the worker is restarted so that it connects with them: still nothing
# planted runs. A positive control shows that the traps do fire when called.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node(
	'hostile',
	preload => 1,
	conf    => "s3scan_jobs.database = 'scans'\ns3scan_jobs.refresh_interval = '1s'\n");
$node->start;
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql('postgres', q{
CREATE ROLE scan_owner LOGIN;
CREATE DATABASE scans OWNER scan_owner;
});

# Every query of the test itself pins its search_path, so that the test never calls a trap.
sub sq
{
	my ($sql, %opts) = @_;
	return $node->safe_psql('scans', "SET search_path = pg_catalog, public;\n$sql", %opts);
}

# The owner's traps, in schema $schema: each operator's function records itself.
sub plant
{
	my ($schema) = @_;
	$node->safe_psql('scans', qq{
DO \$plant\$
DECLARE
    types text[] := ARRAY['bigint', 'integer', 'numeric', 'double precision', 'text', 'uuid',
                          'timestamp with time zone'];
    ops text[] := ARRAY['+', '-', '*', '/', '=', '<>', '<', '>', '<=', '>='];
    l text; r text; op text; fn text; n int := 0;
BEGIN
    FOREACH l IN ARRAY types LOOP
        FOREACH r IN ARRAY types LOOP
            FOREACH op IN ARRAY ops LOOP
                n := n + 1;
                fn := format('%I.trap_%s', '$schema', n);
                EXECUTE format(\$f\$CREATE FUNCTION %s(a %s, b %s) RETURNS %s LANGUAGE plpgsql AS
                    \$b\$ BEGIN INSERT INTO public.captured (what) VALUES (%L); RETURN NULL; END \$b\$\$f\$,
                    fn, l, r, CASE WHEN op IN ('+', '-', '*', '/') THEN l ELSE 'boolean' END,
                    format('%s.%s(%s, %s)', '$schema', op, l, r));
                EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)',
                               '$schema', op, l, r, fn);
            END LOOP;
        END LOOP;
    END LOOP;
END
\$plant\$;
-- functions and aggregates named like built-ins the extension and the migration call
CREATE FUNCTION $schema.now() RETURNS timestamptz LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.now()'); RETURN NULL; END \$b\$;
CREATE FUNCTION $schema.pg_extension_config_dump(regclass, text) RETURNS void LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.pg_extension_config_dump'); END \$b\$;
CREATE FUNCTION $schema.quote_ident(text) RETURNS text LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.quote_ident'); RETURN \$1; END \$b\$;
CREATE FUNCTION $schema.numeric(bigint) RETURNS numeric LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.numeric(bigint)'); RETURN 0; END \$b\$;
CREATE FUNCTION $schema.trap_sfunc(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema aggregate'); RETURN 0; END \$b\$;
CREATE AGGREGATE $schema.count(uuid) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE $schema.count(text) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE $schema.sum(bigint) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE $schema.max(timestamp with time zone) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE $schema.min(timestamp with time zone) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE $schema.avg(numeric) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE $schema.sum(numeric) (SFUNC = $schema.trap_sfunc, STYPE = bigint);
CREATE FUNCTION $schema.trap_bool_sfunc(boolean, boolean) RETURNS boolean LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.bool_or'); RETURN true; END \$b\$;
CREATE AGGREGATE $schema.bool_or(boolean) (SFUNC = $schema.trap_bool_sfunc, STYPE = boolean);
CREATE FUNCTION $schema.current_setting(text) RETURNS text LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.current_setting'); RETURN 'replica'; END \$b\$;
CREATE FUNCTION $schema.trap_negate(bigint) RETURNS bigint LANGUAGE plpgsql AS
  \$b\$ BEGIN INSERT INTO public.captured (what) VALUES ('$schema.-(bigint)'); RETURN 0; END \$b\$;
CREATE OPERATOR $schema.- (RIGHTARG = bigint, FUNCTION = $schema.trap_negate);
}, extra_params => [ '-U', 'scan_owner' ]);
}

$node->safe_psql('scans', q{
CREATE FUNCTION public.my_backend_type() RETURNS text LANGUAGE sql
    AS 'SELECT backend_type FROM pg_catalog.pg_stat_activity
        WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()';
CREATE TABLE public.captured (what text, who name DEFAULT current_user,
                              backend text DEFAULT public.my_backend_type(),
                              at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT INSERT ON public.captured TO PUBLIC;
}, extra_params => [ '-U', 'scan_owner' ]);
plant('public');
my $planted = sq("SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace");
cmp_ok($planted, '>=', 400, "the owner planted $planted operators in public");

# Positive control: a trap fires when called, and records its caller.
sq("SELECT 1::bigint OPERATOR(public.<) 2::bigint");
is(sq("SELECT what || ' by ' || who FROM public.captured"), "public.<(bigint, bigint) by $superuser",
	'a planted operator, when called, records its caller');
sq('TRUNCATE public.captured');

sub captured
{
	return sq("SELECT coalesce(string_agg(what || ' by ' || who || ' (' || coalesce(backend, '?') || ')', E'\\n'), '')
	          FROM public.captured");
}

# CREATE EXTENSION by the superuser, with the traps in place.
sq('CREATE EXTENSION s3scan_jobs SCHEMA public');
# the owner is also the application here, with the README's grants
sq('GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings TO scan_owner;
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO scan_owner;');
add_job($node, 'scans', 'bbbbbbbb-0000-4000-8000-000000000001', 40, 6);
add_job($node, 'scans', 'bbbbbbbb-0000-4000-8000-000000000002', 0, 0);

# The clients' statements, as the owner (an application role would be the same).
my $clients = q{
INSERT INTO public.job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('bbbbbbbb-0000-4000-8000-000000000001', 'bucket-tap', 'new-1', 'e', 'queued', now()),
       ('bbbbbbbb-0000-4000-8000-000000000001', 'bucket-tap', 'new-2', 'e', 'queued', now())
ON CONFLICT DO NOTHING;
UPDATE public.job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
WHERE job_id = 'bbbbbbbb-0000-4000-8000-000000000001' AND bucket = 'bucket-tap' AND key = 'new-1' AND etag = 'e';
INSERT INTO public.findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
VALUES ('bbbbbbbb-0000-4000-8000-000000000001', 'bucket-tap', 'new-1', 'e', 'ssn', '***', 'c', 1, now())
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
};

# Everything the extension runs: worker refreshes (each after a change: with nothing changed a
# pass is 'unchanged'), an 'unchanged' pass, the SQL refresh, a person's REFRESH, both job_status
# paths, every view.
sub exercise
{
	my ($label) = @_;
	my $refreshed = 0;
	for my $n (1 .. 3)
	{
		my $mark = sq('SELECT coalesce(max(id), 0) FROM refresh_history');
		sq("UPDATE jobs SET updated_at = now() WHERE job_id = 'bbbbbbbb-0000-4000-8000-000000000002'");
		$refreshed++
		  if defined wait_for(
			$node, 'scans',
			"SET search_path = pg_catalog, public; SELECT count(*) > 0 FROM refresh_history
			 WHERE origin = 'worker' AND outcome = 'refreshed' AND id > $mark");
	}
	is($refreshed, 3, "$label: the worker refreshed three more times");
	my $mark = sq('SELECT coalesce(max(id), 0) FROM refresh_history');
	ok( defined wait_for(
			$node, 'scans',
			"SET search_path = pg_catalog, public; SELECT count(*) > 0 FROM refresh_history
			 WHERE origin = 'worker' AND outcome = 'unchanged' AND id > $mark"),
		"$label: with nothing changed, the worker's pass is 'unchanged'");
	# (it skips when it meets a refresh of the worker's: tried until it refreshes itself)
	ok( defined wait_for(
			$node, 'scans', 'SET search_path = pg_catalog, public; SELECT outcome FROM refresh_job_progress()',
			'refreshed'),
		"$label: refresh_job_progress()");
	sq('REFRESH MATERIALIZED VIEW job_progress');
	sq('REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress');
	is( sq("SELECT total_objects || '/' || data_source FROM job_status('bbbbbbbb-0000-4000-8000-000000000001')"),
		'40/cached', "$label: job_status cached");
	is( sq("SELECT total_objects || '/' || data_source FROM job_status('bbbbbbbb-0000-4000-8000-000000000001', true)"),
		'40/real_time', "$label: job_status real time");
	sq("SELECT * FROM job_summary; SELECT * FROM job_progress_live; SELECT * FROM job_progress;
	   SELECT * FROM active_jobs_progress; SELECT * FROM job_statistics; SELECT * FROM refresh_worker_status;");
	# the counters' upkeep, and the TRUNCATE and replica-role triggers (rolled back)
	is(sq('SELECT count(*) FROM verify_job_counters()'), '0', "$label: verify_job_counters()");
	sq('SELECT repair_job_counters(); SELECT fold_job_counters(); SELECT counter_maintenance();
	    SELECT set_counter_maintenance(false); SELECT set_counter_maintenance(true);');
	is( sq("BEGIN; TRUNCATE findings; TRUNCATE jobs CASCADE;
	        SELECT count(*) FROM verify_job_counters(); ROLLBACK;"),
		'0', "$label: TRUNCATE counted");
	is( sq("BEGIN; SET LOCAL session_replication_role = replica;
	        UPDATE job_objects SET status = 'failed' WHERE key LIKE '%obj-1%';
	        DELETE FROM findings WHERE byte_offset = 10;
	        SELECT count(*) FROM verify_job_counters(); ROLLBACK;"),
		'0', "$label: replica-role changes counted");
}

exercise('traps in public');
$node->safe_psql('scans', $clients, extra_params => [ '-U', 'scan_owner' ]);
sq('DELETE FROM public.job_objects WHERE key LIKE $$new-%$$; DELETE FROM public.findings WHERE key = $$new-1$$');
is(captured(), '', 'traps in public: nothing planted ran');

# The owner's schema first on the database's search_path, and on the superuser's: the worker,
# restarted, connects with both.
$node->safe_psql('scans', 'CREATE SCHEMA evil', extra_params => [ '-U', 'scan_owner' ]);
plant('evil');
$node->safe_psql('scans', 'ALTER DATABASE scans SET search_path = evil, pg_catalog, public',
	extra_params => [ '-U', 'scan_owner' ]);
$node->safe_psql('postgres', "ALTER ROLE $superuser SET search_path = evil, pg_catalog, public");
# (a session of the superuser now resolves unqualified names through evil first)
is($node->safe_psql('scans', 'SHOW search_path'), 'evil, pg_catalog, public',
	'the superuser connects with the hostile search_path');
sq('TRUNCATE public.captured');

my $old = worker_pid($node, 'scans');
sq("SELECT pg_terminate_backend($old)");
ok(defined wait_for_cond(sub { my $p = worker_pid($node, 'scans'); defined $p && $p != $old }),
	'the worker is restarted, with the hostile settings');
exercise('hostile search_path');
# a person's unqualified REFRESH and the functions called without pinning the session
$node->safe_psql('scans', "REFRESH MATERIALIZED VIEW job_progress;
                           SELECT * FROM job_status('bbbbbbbb-0000-4000-8000-000000000001', true);
                           SELECT refresh_job_progress();");
# (the application's own sessions set their own search_path: the database's now runs the traps)
$node->safe_psql('scans', "SET search_path = public;\n$clients", extra_params => [ '-U', 'scan_owner' ]);
is(captured(), '', 'hostile search_path: nothing planted ran');
# (a worker refresh that met the test's own refresh skips: that is not a failure)
is(sq("SELECT count(*) FROM refresh_history WHERE origin = 'worker' AND outcome = 'failed'"), '0',
	'no worker refresh failed');

$node->stop;
done_testing();
