# Credentials that no other suite takes through nginx: an api_server URL
# with client_cert and client_key (the emulator's client certificate, no
# token), and "api_server in-cluster" with a service account.  In-cluster
# reads KUBERNETES_SERVICE_HOST/PORT from the master's environment and the
# token, CA and namespace from /var/run/secrets/kubernetes.io/serviceaccount
# (fixed in lib/kle_kubeconfig.h); a second nginx runs in a mount namespace
# of its own (unshare, as root) where a tmpfs on /run holds that directory,
# so the machine's own /run is never touched.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $Dir = $ENV{TEST_NGINX_EMULATOR_DIR};

# Can this process give nginx a mount namespace of its own?
our $CanUnshare = $> == 0
    && system('unshare -m sh -c "mount -t tmpfs tmpfs /run" 2>/dev/null') == 0;

plan tests => 17;

run_tests();

__DATA__

=== TEST 1: client_cert and client_key, no token: the API server sees the certificate's user
--- http_config
    leader_election web {
        lock            leases default/cert-direct;
        identity        cd1;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      $TEST_NGINX_API_URL;
        ca_file         $TEST_NGINX_EMULATOR_DIR/ca.crt;
        client_cert     $TEST_NGINX_EMULATOR_DIR/client.crt;
        client_key      $TEST_NGINX_EMULATOR_DIR/client.key;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/cert-direct') } });
my @r = @{ requests(path => '/leases/cert-direct') };
my %users = map { $_->{user} // 'none' => 1 } @r;
is_deeply([sort keys %users], ['kle-client'],
          'every request authenticated by the client certificate (' . scalar(@r) . ')');
is(lease_spec('default', 'cert-direct')->{holderIdentity}, 'cd1', 'the Lease names cd1');
--- request
GET /vars
--- response_body
1 cd1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: api_server in-cluster: the service account's token, CA and the service's host and port
--- init
SKIP: {
    skip 'needs root and unshare -m (a mount namespace for the service account files)', 8
        unless $main::CanUnshare;
    my $sa = tempdir('kle-sa-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    add_token('sa-token-in-cluster', 'system:serviceaccount:kle:nginx');
    for (['token', 'sa-token-in-cluster'], ['namespace', 'kle'],
         ['ca.crt', do { local (@ARGV, $/) = ("$main::Dir/ca.crt"); <> }]) {
        open my $out, '>', "$sa/$_->[0]" or die "$sa/$_->[0]: $!";
        print $out $_->[1];
        close $out;
    }
    my $ic = Kle::Nginx->new(
        name => 'ic', master => 1, workers => 1,
        env => { KUBERNETES_SERVICE_HOST => '127.0.0.1',
                 KUBERNETES_SERVICE_PORT => $ENV{TEST_NGINX_API_PORT} },
        wrap => ['unshare', '-m', 'sh', '-c',
                 'set -e; mount -t tmpfs tmpfs /run; '
                 . 'd=/var/run/secrets/kubernetes.io/serviceaccount; '
                 . 'mkdir -p $d; cp "$0"/token "$0"/ca.crt "$0"/namespace $d/; '
                 . 'exec "$@"', $sa],
        http_config => <<'_EOC_',
    leader_election web {
        lock            leases kle/in-cluster;
        identity        ic1;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      in-cluster;
    }
_EOC_
        config => <<'_EOC_');
        location = /vars {
            return 200 "$leader_election_is_leader $leader_election_holder\n";
        }
_EOC_
    $ic->start;
    my $led = wait_until(10, sub { ($ic->get('/vars'))[1] eq "1 ic1\n" });
    ok($led, 'the in-cluster instance leads') or diag($ic->error_log);
    wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/in-cluster') } });
    my @r = @{ requests(path => '/namespaces/kle/leases') };
    ok(@r >= 3, scalar(@r) . ' requests for the lock');
    my %users = map { $_->{user} // 'none' => 1 } @r;
    is_deeply([sort keys %users], ['system:serviceaccount:kle:nginx'],
              "every request carried the service account's token");
    is(lease_spec('kle', 'in-cluster')->{holderIdentity}, 'ic1', 'the Lease names ic1');
    unlike($ic->error_log, qr/\[(?:error|alert|crit|emerg)\]/, 'no error logged');
    ok(!-e '/var/run/secrets/kubernetes.io/serviceaccount/token'
           || -e '/var/run/secrets/kubernetes.io/serviceaccount/.kle-test',
       "the machine's own /run was not written");
    # a revoked service-account token: the in-cluster instance steps down
    revoke_token('sa-token-in-cluster');
    my $down = wait_until(12, sub { ($ic->get('/vars'))[1] eq "0 ic1\n" });
    ok($down, 'its token revoked, it steps down within renew_deadline');
    like($ic->error_log, qr/\[error\] .*unauthorized/, 'and says why');
    $ic->stop;
}
--- request
GET /vars
--- response_body
1 cd1
