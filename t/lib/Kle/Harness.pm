package Kle::Harness;

# What every Test::Nginx suite of this project shares, under either harness
# (the in-tree t/lib/Test/Nginx or CPAN's Test::Nginx 0.33): see
# t/lib/README.md.  Loaded by Kle::Emulator, Kle::Nginx and Kle::Hooks, so
# a suite that starts with "use Kle::Emulator;" has all of it; it must be
# loaded before Test::Nginx::Socket.
#
# 1. One port and one server root per .t file, so that "prove -j2" works:
#    t/NNN_name.t gets TEST_NGINX_SERVER_PORT = BASE + NNN (BASE is
#    TEST_NGINX_PORT, else 1984) and TEST_NGINX_SERVROOT = t/servroot_NNN.
#    A TEST_NGINX_SERVER_PORT or TEST_NGINX_SERVROOT set by the caller
#    wins.  The file's further ports are PORT + 1000 * K (K = 1 .. 9):
#    extra_port(K), in the environment as TEST_NGINX_EXTRA_PORT_K.  Fixed,
#    never chosen by bind-then-close: below the kernel's ephemeral range,
#    nothing else takes them between choosing and listening.
#
# 2. "--- init" code runs in package main in both harnesses (CPAN's
#    evaluates it in package Test::Nginx::Util): a block preprocessor
#    prefixes it with "package main;" and a #line naming the block, so
#    init code calls the helpers, Test::More and the suite's own subs
#    unqualified, and its errors name the block.
#
# 3. start_test_nginx(): starts Test::Nginx's nginx again after a block's
#    init stopped it (CPAN's Test::Nginx::Util has no start_nginx).
#    reload_test_nginx($edit): edits its nginx.conf and sends SIGHUP.

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(basename);
use File::Spec ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(extra_port start_test_nginx reload_test_nginx
                    file_number);

if ($INC{'Test/Nginx/Util.pm'}) {
    die "Kle::Harness (or Kle::Emulator, Kle::Nginx, Kle::Hooks) must be "
        . "loaded before Test::Nginx::Socket\n";
}

my $Base = $ENV{TEST_NGINX_PORT} || 1984;
my $Stem = basename($0, '.t');
my ($Number) = $Stem =~ /^(\d+)_/;
$Number //= 0;

# The number of the .t file (NNN of t/NNN_name.t), 0 for other names.
sub file_number () { $Number + 0 }

if (!$ENV{TEST_NGINX_SERVER_PORT}) {
    $ENV{TEST_NGINX_SERVER_PORT} = $Base + $Number % 1000;
}
our $Port = $ENV{TEST_NGINX_SERVER_PORT};

if (!$ENV{TEST_NGINX_SERVROOT}) {
    my $dir = $Stem =~ /^(\d+)_/ ? "t/servroot_$1" : "t/servroot_$Stem";
    $ENV{TEST_NGINX_SERVROOT} = File::Spec->rel2abs($dir);
}

sub extra_port ($) {
    my $k = shift;
    die "extra_port: K is 1 .. 9, not $k\n" unless $k =~ /^[1-9]\z/;
    return $Port + 1000 * $k;
}

$ENV{"TEST_NGINX_EXTRA_PORT_$_"} = extra_port($_) for 1 .. 9;

require Test::Nginx::Util;

Test::Nginx::Util::add_block_preprocessor(sub {
    my $block = shift;
    my $init = $block->init;
    return unless defined $init && $init !~ /\A#kle-init\n/;
    (my $where = "$0 " . $block->name . ' --- init') =~ tr/"\n/'/d;
    $block->set_value('init',
                      "#kle-init\npackage main;\n#line 1 \"$where\"\n$init");
});

# Starts Test::Nginx's nginx with its configuration as the harness would
# (daemon mode; not under valgrind) and waits until it listens.
sub start_test_nginx () {
    no warnings 'once';
    my $root = $Test::Nginx::Util::ServRoot;
    my $conf = $Test::Nginx::Util::ConfFile;
    my $bin = $Test::Nginx::Util::NginxBinary || 'nginx';
    my $out = `$bin -p $root/ -c $conf -e $root/logs/error.log 2>&1`;
    die "start_test_nginx: nginx did not start: $out\n" if $? != 0;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $Port,
                                         Proto => 'tcp', Timeout => 1);
        if ($sock) {
            close $sock;
            return 1;
        }
        sleep 0.02;
    }
    die "start_test_nginx: nginx does not listen on $Port\n";
}

# Edits Test::Nginx's nginx.conf with $edit (a sub from the text to the new
# text) and sends SIGHUP to its master; returns the time of the signal.
sub reload_test_nginx ($) {
    my $edit = shift;
    my $conf = "$ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf";
    open my $in, '<', $conf or die "$conf: $!\n";
    my $text = do { local $/; <$in> };
    close $in;
    $text = $edit->($text);
    open my $out, '>', $conf or die "$conf: $!\n";
    print $out $text;
    close $out;
    my $t = time;
    kill 'HUP', Test::Nginx::Util::get_pid_from_pidfile('');
    return $t;
}

1;
