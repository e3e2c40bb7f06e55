# $leader_election_fencing_token: while this instance leads, the
# transition count of its own term, read in the same snapshot as the
# leader check; empty when it does not lead (a follower, a lapsed claim).
# The _NAME forms select an election; the unsuffixed form is the first.

use Kle::Emulator;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

# fa: released by someone else, taken over as the 7th transition;
# fb: held by x for an hour.
put_lease('fa', holder => '', secs => 1, transitions => 6);
put_lease('fb', holder => 'x', secs => 3600, transitions => 2);

plan tests => 37;

run_tests();

__DATA__

=== TEST 1: the leader's token is its term; a follower's is empty
--- http_config
    leader_election a {
        lock            leases default/fa;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
    leader_election b {
        lock            leases default/fb;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /vars {
        return 200 "[$leader_election_fencing_token] a=$leader_election_is_leader_a:[$leader_election_fencing_token_a]:$leader_election_transitions_a b=$leader_election_is_leader_b:[$leader_election_fencing_token_b]:$leader_election_transitions_b\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^\[7\] .* b=0:\[\]:2$/ });
--- request
GET /vars
--- response_body
[7] a=1:[7]:7 b=0:[]:2
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a lapsed claim (API stalled): no token, though the holder is still this instance
--- init
add_fault(kind => 'stall', path => '/leases/fa');
wait_until(4, sub { (nginx_var('/vars') // '') =~ /^\[\] a=0:/ });
--- request
GET /vars
--- response_body
[] a=0:[]:7 b=0:[]:2
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: leading again in the same term: the same token
--- init
clear_faults();
wait_until(6, sub { (nginx_var('/vars') // '') =~ /^\[7\] a=1:/ });
is(lease_spec('default', 'fa')->{leaseTransitions}, 7, 'no new transition');
--- request
GET /vars
--- response_body
[7] a=1:[7]:7 b=0:[]:2
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: a new term after the lock changed hands: the token grows
--- init
# x takes fa for a moment (a forced write, transitions 8), then releases it
my $o = get_object('leases', 'default', 'fa');
put_lease('fa', holder => 'x', secs => 2,
          transitions => $o->{spec}{leaseTransitions} + 1);
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^\[\] a=0:/ });
put_lease('fa', holder => '', secs => 1,
          transitions => $o->{spec}{leaseTransitions} + 1);
wait_until(8, sub { (nginx_var('/vars') // '') =~ /^\[9\] a=1:/ });
is(lease_spec('default', 'fa')->{holderIdentity}, 'i1', 'i1 holds fa again');
--- request
GET /vars
--- response_body
[9] a=1:[9]:9 b=0:[]:2
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: the variables exist without any election: empty token
--- http_config
--- config
    location = /vars {
        return 200 "[$leader_election_fencing_token] $leader_election_is_leader\n";
    }
--- request
GET /vars
--- response_body
[] 0
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: docs/directives.md's example: the token read once (set), then checked and sent; a follower's request is refused
--- http_config
    leader_election a {
        lock            leases default/fc;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
    leader_election b {
        lock            leases default/fb;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location /jobs/ {
        set $fencing_token $leader_election_fencing_token;
        if ($fencing_token = "") {
            return 503;
        }
        proxy_set_header X-Fencing-Token $fencing_token;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/guarded/;
    }
    location /b/jobs/ {
        set $fencing_token $leader_election_fencing_token_b;
        if ($fencing_token = "") {
            return 503;
        }
        proxy_set_header X-Fencing-Token $fencing_token;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/guarded/;
    }
    location /guarded/ {
        return 200 "token=[$http_x_fencing_token]\n";
    }
--- init
wait_until(5, sub { (nginx_var('/jobs/x') // '') =~ /^token=\[0\]$/ });
--- request eval
["GET /jobs/x", "GET /b/jobs/x"]
--- error_code eval
[200, 503]
--- response_body_like eval
["^token=\\[0\\]\$", ""]
--- no_error_log
[error]
[alert]
[crit]
