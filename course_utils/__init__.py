# course_utils
