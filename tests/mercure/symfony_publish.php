<?php
// Publishes through Symfony's own Mercure publisher (Debian's php-symfony-mercure):
// php symfony_publish.php HUB_URL JWT. Prints each answered id on its own line.
// Driven by tests/mercure.rs, which checks what subscribers receive.

require_once 'Symfony/Component/Mercure/autoload.php';
require_once 'Symfony/Component/HttpClient/autoload.php';

use Symfony\Component\Mercure\Hub;
use Symfony\Component\Mercure\Jwt\StaticTokenProvider;
use Symfony\Component\Mercure\Update;

[, $url, $jwt] = $argv;
$hub = new Hub($url, new StaticTokenProvider($jwt));

$updates = [
    // Public, with the publisher's id, a type, a retry and multi-line data.
    new Update('https://example.com/books/1', "line one\nline two\n\nline four", false, 'urn:uuid:book-1', 'book.updated', 2500),
    // Private: only a subscriber whose token covers the topic gets it.
    new Update('https://example.com/users/7', '{"secret":true}', true, 'urn:uuid:user-7'),
    // Alternate topics: the first is canonical, a subscriber of any of them gets it once.
    new Update(['https://example.com/reviews/3', 'https://example.com/books/1/reviews'], 'a review', false, 'urn:uuid:review-3'),
    // No id: the hub assigns one.
    new Update('https://example.com/books/2', 'plain'),
];
foreach ($updates as $update) {
    echo $hub->publish($update), "\n";
}
