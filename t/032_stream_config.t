# What nginx -t says about the stream module's configuration: loaded
# without the http module, or before it; a variable that names no
# election of an http{} before stream{}.  The http module loads without
# any stream module, and the stream module is harmless where stream{}
# does not use it.

use Kle::Emulator;
use Kle::Stream qw(:DEFAULT stream_core_module stream_module http_module);
use Test::Nginx::Socket;

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

if (my $why = Kle::Stream::missing()) {
    plan skip_all => $why;
}

my $Core = stream_core_module() ? "load_module " . stream_core_module() . ";\n" : '';
my $Http = "load_module " . http_module() . ";\n";
my $Stream = "load_module " . stream_module() . ";\n";

my $Election = <<"_EOC_";
http {
    leader_election a {
        lock        leases default/cfg;
        identity    i1;
        api_server  kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
}
_EOC_

sub stream_using {
    my ($var) = @_;
    return "stream {\n    server {\n        listen 127.0.0.1:"
           . stream_port() . ";\n        return \"\$$var\";\n    }\n}\n";
}

my $Events = "events {}\n";

# [what, configuration, expected exit status, pattern of the output]
my @Cases = (
    ['the stream module without the http module',
     $Core . $Stream . $Events . stream_using('leader_election_is_leader'), 1,
     qr/\[emerg\] ngx_stream_leader_election_module needs ngx_http_leader_election_module: add "load_module modules\/ngx_http_leader_election_module\.so;" before the load_module line of this module in \S+nginx\.conf:\d+\n/],
    ['the stream module loaded before the http module',
     $Core . $Stream . $Http . $Events . $Election
     . stream_using('leader_election_is_leader'), 1,
     qr/\[emerg\] ngx_stream_leader_election_module is loaded before ngx_http_leader_election_module: put the load_module line of ngx_http_leader_election_module\.so first in \S+nginx\.conf:\d+\n/],
    ['stream{} before the http{} that defines the election',
     $Core . $Http . $Stream . $Events . stream_using('leader_election_is_leader')
     . $Election, 1,
     qr/\[emerg\] "\$leader_election_is_leader" is used in stream\{\}, but no leader_election is defined in an http\{\} block before stream\{\} in \S+nginx\.conf:\d+\n/],
    ['stream{} before http{}: a _NAME form',
     $Core . $Http . $Stream . $Events . stream_using('leader_election_fencing_token_a')
     . $Election, 1,
     qr/\[emerg\] "\$leader_election_fencing_token_a" is used in stream\{\}, but no leader_election "a" is defined in an http\{\} block before stream\{\}/],
    ['an election http{} does not define',
     $Core . $Http . $Stream . $Events . $Election
     . stream_using('leader_election_holder_address_c'), 1,
     qr/\[emerg\] "\$leader_election_holder_address_c" is used in stream\{\}, but no leader_election "c" is defined in an http\{\} block before stream\{\}/],
    ['http{} without any election',
     $Core . $Http . $Stream . $Events . "http {}\n"
     . stream_using('leader_election_holder'), 1,
     qr/\[emerg\] "\$leader_election_holder" is used in stream\{\}, but no leader_election is defined/],
    ['the http module alone, no stream module at all',
     $Http . $Events . $Election, 0, qr/test is successful/],
    ['nginx\'s stream and the http module, without this stream module',
     $Core . $Http . $Events . $Election
     . "stream {\n    server {\n        listen 127.0.0.1:" . stream_port()
     . ";\n        return x;\n    }\n}\n", 0, qr/test is successful/],
    ['stream{} before http{}, not using the variables',
     $Core . $Http . $Stream . $Events
     . "stream {\n    server {\n        listen 127.0.0.1:" . stream_port()
     . ";\n        return x;\n    }\n}\n" . $Election, 0,
     qr/test is successful/],
    ['all three in order, stream{} after http{}',
     $Core . $Http . $Stream . $Events . $Election
     . stream_using('leader_election_is_leader_a'), 0,
     qr/test is successful/],
    # nginx matches variable names without regard to case, as http{} does
    ['an election named with capitals, used as written',
     $Core . $Http . $Stream . $Events . ($Election =~ s/leader_election a/leader_election Main/r)
     . stream_using('leader_election_is_leader_Main'), 0,
     qr/test is successful/],
);

plan tests => 2 * @Cases + 2;

for my $c (@Cases) {
    my ($what, $conf, $rc, $pat) = @$c;
    my ($got, $text) = nginx_t($conf);
    is($got, $rc, "$what: nginx -t exits $rc");
    like($text, $pat, "$what: says so") or diag($conf);
}

run_tests();

__DATA__

=== TEST 1: starting nginx, the error is in the error log: an election http{} lacks
--- http_config
    leader_election a {
        lock        leases default/cfg;
        identity    i1;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /t { return 200; }
--- stream_server_config
    return "$leader_election_is_leader_zz";
--- request
GET /t
--- must_die
--- error_log eval
qr/\[emerg\] .*"\$leader_election_is_leader_zz" is used in stream\{\}, but no leader_election "zz" is defined in an http\{\} block before stream\{\}/
