# Routing on the election: map, if, add_header, log_format and proxy_pass
# to an upstream chosen by $leader_election_is_leader; followers redirect
# writes to the holder's advertised address.  Routing follows a step down.

use Kle::Emulator;
use Kle::Status;
use Test::Nginx::Socket;

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

put_object('leases', 'default', 'route-held', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => {
        name => 'route-held', namespace => 'default',
        annotations => { 'leader-election.nginx.org/address' => '10.9.8.7:8080',
                         'leader-election.nginx.org/address-holder' => 'boss' },
    },
    spec => {
        holderIdentity => 'boss', leaseDurationSeconds => 3600,
        acquireTime => '2026-01-01T00:00:00.000000Z',
        renewTime => '2026-01-01T00:00:00.000000Z',
        leaseTransitions => 2,
    },
});

# LOCK is replaced per block.
our $HttpConfig = <<'_EOC_';
    leader_election web {
        lock            leases default/LOCK;
        identity        me;
        address         127.0.0.1:$TEST_NGINX_SERVER_PORT;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }

    map $leader_election_is_leader $role {
        1        leader;
        default  follower;
    }

    map $leader_election_is_leader $backend {
        1        be_leader;
        default  be_follower;
    }

    upstream be_leader {
        server 127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
    }

    upstream be_follower {
        server 127.0.0.1:$TEST_NGINX_EXTRA_PORT_2;
    }

    log_format kle 'route $uri role=$role leader=$leader_election_is_leader holder=$leader_election_holder';

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        location / {
            return 200 "leader backend got $uri\n";
        }
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_2;
        location / {
            return 200 "follower backend got $uri\n";
        }
    }
_EOC_

sub http_config { my $c = $HttpConfig; $c =~ s/LOCK/$_[0]/; $c }

plan tests => 58;

run_tests();

__DATA__

=== TEST 1: the leader: map, add_header, proxy_pass to the leader upstream
--- http_config eval
main::http_config('route-lead')
--- config
    location = /leader {
        leader_election_status;
    }
    location = /role {
        add_header X-Leader $leader_election_is_leader;
        return 200 "$role\n";
    }
    location /api/ {
        proxy_pass http://$backend;
    }
    location /write {
        access_log logs/access.log kle;
        if ($leader_election_is_leader = 0) {
            return 307 http://$leader_election_holder_address$request_uri;
        }
        return 200 "written by $leader_election_identity\n";
    }
--- init
wait_until(5, sub { (nginx_var('/role') // '') eq "leader\n" });
--- request eval
["GET /role", "GET /api/x"]
--- response_headers eval
["X-Leader: 1", "!X-Leader"]
--- response_body eval
["leader\n", "leader backend got /api/x\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: the leader takes writes; log_format sees the variables
--- request
GET /write?k=1
--- response_body
written by me
--- access_log
route /write role=leader leader=1 holder=me
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: routing follows a step down (renews fail for renew_deadline)
--- init
add_fault(kind => 'status', code => 500, method => 'PUT', path => '/leases/route-lead');
wait_until(4, sub { (nginx_var('/role') // '') eq "follower\n" });
--- request eval
["GET /role", "GET /api/y"]
--- response_headers eval
["X-Leader: 0", ""]
--- response_body eval
["follower\n", "follower backend got /api/y\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: ... and comes back once the API server answers again
--- init
clear_faults();
wait_until(5, sub { (nginx_var('/role') // '') eq "leader\n" });
--- request eval
["GET /role", "GET /api/z"]
--- response_body eval
["leader\n", "leader backend got /api/z\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: a follower: proxy_pass to the follower upstream, writes redirected to the holder
--- http_config eval
main::http_config('route-held')
--- config
    location = /leader {
        leader_election_status;
    }
    location = /role {
        add_header X-Leader $leader_election_is_leader;
        return 200 "$role\n";
    }
    location /api/ {
        proxy_pass http://$backend;
    }
    location /write {
        access_log logs/access.log kle;
        if ($leader_election_is_leader = 0) {
            return 307 http://$leader_election_holder_address$request_uri;
        }
        return 200 "written by $leader_election_identity\n";
    }
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{holder} eq 'boss' });
--- request eval
["GET /role", "GET /api/x"]
--- response_headers eval
["X-Leader: 0", "!X-Leader"]
--- response_body eval
["follower\n", "follower backend got /api/x\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: a follower redirects writes to the holder's address
--- request
GET /write?k=1
--- error_code: 307
--- response_headers
Location: http://10.9.8.7:8080/write?k=1
--- response_body_like: 307 Temporary Redirect
--- access_log
route /write role=follower leader=0 holder=boss
--- no_error_log
[error]
[alert]
[crit]
