/* The page: the unit of guest memory that dirty tracking, the migration
 * stream, the codecs and the guest's own layout all count in. The one place
 * its size is written down (the freestanding guest includes it too). */
#ifndef FERRY_UTIL_PAGE_H
#define FERRY_UTIL_PAGE_H

#define FERRY_PAGE_SIZE 4096ull

#endif
